"""Evaluates a trained PSP model (SavedModel or .keras, either setting) on a split.

    python -m trainers.evaluate --model=saved_models/psp_fully/1 --split=test
    python -m trainers.evaluate --model=runs/psp_weakly/seed_1/selected.keras --split=validation

Prints the segment accuracy, a per-class accuracy table (29 rows) and the 29 x 29 confusion
matrix, e.g. ``segment accuracy: 63.44 % over 960 segments``; --output_json writes them too.
"""

import pathlib
import sys

from absl import app, flags, logging

from ave_tf.atomic_files import write_json_atomic
from trainers import flags as train_flags
from trainers.errors import UsageError

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_string(
        "model", None, "A SavedModel folder (serving_default signature) or a .keras file."
    )
    flags.DEFINE_string(
        "dataset", "synthetic", "TFDS config of tfds_ave: synthetic, synthetic_full or features."
    )
    flags.DEFINE_string("data_dir", None, "TFDS data directory.")
    flags.DEFINE_string("manual_dir", None, "AVE release folder (features).")
    flags.DEFINE_string("split", "test", "Split to evaluate (TFDS slicing allowed).")
    flags.DEFINE_integer("batch_size", 64, "Videos per prediction batch.")
    flags.DEFINE_string("output_json", None, "Also write the report here.")


def load_predictor(path):
    """A function inputs dict -> segment_probabilities (B, 10, 29) for a model file/folder."""
    path = pathlib.Path(path)
    if path.suffix == ".keras" and path.is_file():
        import keras

        import ave_tf.models  # noqa: F401  (registers the layers)

        model = keras.models.load_model(path)
        return lambda inputs: model(inputs, training=False)["segment_probabilities"]
    if (path / "saved_model.pb").is_file():
        import tensorflow as tf

        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        return lambda inputs: signature(**inputs)["segment_probabilities"]
    raise UsageError(f"--model {path} is neither a .keras file nor a SavedModel folder")


def evaluate(model_path, dataset, split, batch_size, data_dir=None, manual_dir=None):
    """The `evaluation.segment_report` of the model on a split of a tfds_ave config."""
    import numpy as np

    from ave_tf import data
    from trainers.evaluation import segment_report

    predict = load_predictor(model_path)
    try:
        builder = data.prepare_builder(dataset, data_dir=data_dir, manual_dir=manual_dir)
        batches = data.fully_supervised_dataset(builder, split, batch_size)
    except data.DatasetUnavailableError as error:
        raise UsageError(str(error)) from None
    except ValueError as error:  # Unknown split names.
        raise UsageError(f"--split {split!r}: {str(error).splitlines()[0]}") from None
    labels, probabilities = [], []
    for inputs, targets in batches:
        probabilities.append(np.asarray(predict(inputs)))
        labels.append(targets["segment_logits"].numpy())
    return segment_report(np.concatenate(labels), np.concatenate(probabilities))


def main(argv):
    from trainers.evaluation import format_report

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)
    try:
        if not FLAGS.model:
            raise UsageError("--model is required")
        report = evaluate(
            FLAGS.model,
            FLAGS.dataset,
            FLAGS.split,
            FLAGS.batch_size,
            FLAGS.data_dir,
            FLAGS.manual_dir,
        )
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(format_report(report))
    if FLAGS.output_json:
        write_json_atomic(FLAGS.output_json, report)


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=train_flags.parse_flags)
