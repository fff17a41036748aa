"""Segment accuracy, per-class accuracy and the confusion matrix of predictions.

Pure NumPy over ``labels (N, 10) int`` and ``probabilities (N, 10, 29)``; a segment counts as
correct when the argmax of its probabilities is its label (the official evaluation of both
settings).
"""

import numpy as np

from ave_tf import ave


def confusion_matrix(labels, predictions, num_classes=ave.NUM_CLASSES):
    """(num_classes, num_classes) int64 counts: rows = true class, columns = predicted."""
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def segment_report(labels, probabilities):
    """Dict: accuracy, per-class {name: {support, accuracy}}, confusion_matrix (lists)."""
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
