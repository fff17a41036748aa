"""Evaluates a trained PSP or AVEL model (either setting) on a split: segment accuracy, per class,
and the confusion matrix.

    python -m trainers.evaluate --model=saved_models/psp_fully/1 --split=test
    python -m trainers.evaluate --model=runs/psp_weakly/seed_1/selected.keras --split=validation

``--model`` is a ``.keras`` file, a SavedModel folder or a versioned export root (its newest
version; ``ave_tf.predictors``). The split is streamed in batches (``ave_tf.videos``). Prints
the segment accuracy, a per-class accuracy table (29 rows) and the 29 x 29 confusion matrix,
e.g. ``segment accuracy: 63.44 % over 960 segments``; --output_json writes them too. A segment
counts as correct when the argmax of its probabilities is its label (the official evaluation of
both settings). Bad input (model, dataset, split): one ``error:`` line, exit code 2.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

import numpy as np
from absl import flags

from ave_tf import ave
from ave_tf.atomic_files import write_json_atomic
from ave_tf.errors import UsageError
from ave_tf.predictors import load_predictor
from ave_tf.videos import split_batches

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_string(
        "model", None, "A .keras file, a SavedModel folder or a versioned export root."
    )
    flags.DEFINE_string(
        "dataset", "synthetic", "TFDS config of tfds_ave: synthetic, synthetic_full or features."
    )
    flags.DEFINE_string("data_dir", None, "TFDS data directory.")
    flags.DEFINE_string("manual_dir", None, "AVE release folder (features).")
    flags.DEFINE_string("split", "test", "Split to evaluate (TFDS slicing allowed).")
    flags.DEFINE_integer("batch_size", 64, "Videos per prediction batch.", lower_bound=1)
    flags.DEFINE_string("output_json", None, "Also write the report here.")


def confusion_matrix(labels, predictions, num_classes=ave.NUM_CLASSES):
    """(num_classes, num_classes) int64 counts: rows = true class, columns = predicted."""
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def segment_report(labels, probabilities):
    """Dict: accuracy, per-class {name: {support, accuracy}}, confusion_matrix (lists).

    Args:
        labels: (N, 10) int segment labels.
        probabilities: (N, 10, 29) segment probabilities (or logits).
    """
    labels = np.asarray(labels, np.int64)
    probabilities = np.asarray(probabilities)
    if probabilities.shape[:-1] != labels.shape:
        raise ValueError(f"probabilities {probabilities.shape} do not match labels {labels.shape}")
    matrix = confusion_matrix(labels, probabilities.argmax(-1))
    support = matrix.sum(axis=1)
    per_class = {
        name: {
            "support": int(support[i]),
            "accuracy": (float(matrix[i, i] / support[i]) if support[i] else None),
        }
        for i, name in enumerate(ave.CLASS_NAMES)
    }
    return {
        "segments": int(support.sum()),
        "accuracy": float(np.trace(matrix) / max(support.sum(), 1)),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def format_report(report) -> str:
    """Accuracy, a per-class table and the confusion matrix as text."""
    lines = [
        f"segment accuracy: {100 * report['accuracy']:.2f} % over {report['segments']} segments",
        "",
        f"{'id':>3} {'class':<32} {'segments':>8} {'accuracy %':>10}",
    ]
    for i, (name, row) in enumerate(report["per_class"].items()):
        accuracy = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.2f}"
        lines.append(f"{i:>3} {name[:32]:<32} {row['support']:>8} {accuracy:>10}")
    lines += ["", "confusion matrix (rows: true class id, columns: predicted class id):"]
    lines.append("    " + " ".join(f"{j:>4}" for j in range(len(report["confusion_matrix"]))))
    for i, row in enumerate(report["confusion_matrix"]):
        lines.append(f"{i:>3} " + " ".join(f"{v:>4}" for v in row))
    return "\n".join(lines)


def evaluate(model_path, dataset, split, batch_size, data_dir=None, manual_dir=None):
    """The `segment_report` of the model on a split of a tfds_ave config."""
    predict = load_predictor(model_path)
    labels, probabilities = [], []
    for videos in split_batches(dataset, split, batch_size, data_dir, manual_dir):
        probabilities.append(predict(videos.inputs)["segment_probabilities"])
        labels.append(videos.segment_labels)
    return segment_report(np.concatenate(labels), np.concatenate(probabilities))


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}")
    if not FLAGS.model:
        raise UsageError("--model is required")
    report = evaluate(
        FLAGS.model, FLAGS.dataset, FLAGS.split, FLAGS.batch_size, FLAGS.data_dir, FLAGS.manual_dir
    )
    print(format_report(report))
    if FLAGS.output_json:
        write_json_atomic(FLAGS.output_json, report)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
