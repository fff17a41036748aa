"""Training curves from a run's ``results.json`` and the confusion matrix of an evaluation.

``results.json`` (written by the trainers) holds ``runs``: one entry per seed with ``epochs``
(one record per epoch: ``epoch``, ``learning_rate``, ``loss``, a ``*segment_accuracy`` metric)
and ``validations`` (``epoch``, ``accuracy``, ``loss`` on the validation split), plus
``selected_epoch``. The confusion matrix is read from a JSON file holding a
``confusion_matrix`` (rows: true class, columns: predicted class) such as the report of
``python -m trainers.evaluate --output_json=...``, or from ``.npy`` / ``.csv``. Rows and
columns are class ids; names come from a ``class_names`` list when the file has one (never
from the keys of ``per_class``, which JSON writers may sort), else from ``ave.CLASS_NAMES``.
"""

import dataclasses
import json
import pathlib

import matplotlib.ticker
import numpy as np

from ave_tf import ave
from ave_tf.errors import UsageError
from ave_tf.visualize import figures

CURVES_INCHES = (13.0, 3.8)
CONFUSION_INCHES = (10.0, 9.0)
ACCURACY_KEY = "segment_accuracy"


class ResultsFormatError(UsageError, ValueError):
    """``results.json`` or a confusion file lacks what a figure needs; the message names it."""


@dataclasses.dataclass(frozen=True)
class Curves:
    """Per-epoch series of one training run (0-based epochs)."""

    epochs: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    learning_rate: np.ndarray
    validation_epochs: np.ndarray
    validation_loss: np.ndarray | None
    validation_accuracy: np.ndarray
    selected_epoch: int | None
    label: str


def _require(mapping, key, where, source):
    if not isinstance(mapping, dict) or key not in mapping:
        have = sorted(mapping) if isinstance(mapping, dict) else type(mapping).__name__
        raise ResultsFormatError(f"{source}: {where} has no {key!r} (has {have})")
    return mapping[key]


def _accuracy_key(record, where, source):
    keys = sorted(k for k in record if ACCURACY_KEY in k and not k.startswith("val_"))
    if not keys:
        raise ResultsFormatError(
            f"{source}: {where} has no metric containing {ACCURACY_KEY!r} (has {sorted(record)})"
        )
    return keys[0]


def prepare_curves(results: dict, run: int = 0, source: str = "results.json") -> Curves:
    """The series of run ``run`` (a seed's entry in ``results["runs"]``)."""
    runs = _require(results, "runs", "the top level", source)
    if not isinstance(runs, list) or not runs:
        raise ResultsFormatError(f"{source}: 'runs' must be a non-empty list")
    if not 0 <= run < len(runs):
        raise ResultsFormatError(f"{source}: run {run} requested; it has {len(runs)} run(s)")
    entry = runs[run]
    where = f"runs[{run}]"
    records = _require(entry, "epochs", where, source)
    if not records:
        raise ResultsFormatError(f"{source}: {where}['epochs'] is empty")
    accuracy = _accuracy_key(records[0], f"{where}['epochs'][0]", source)
    columns = {}
    for key in ("epoch", "loss", "learning_rate", accuracy):
        columns[key] = np.array(
            [
                _require(record, key, f"{where}['epochs'][{i}]", source)
                for i, record in enumerate(records)
            ],
            dtype=np.float64,
        )
    validations = entry.get("validations") or []
    val_where = f"{where}['validations']"
    val_epochs = [_require(v, "epoch", val_where, source) for v in validations]
    val_accuracy = [_require(v, "accuracy", val_where, source) for v in validations]
    val_loss = [v.get("loss") for v in validations]
    seed = entry.get("seed")
    return Curves(
        epochs=columns["epoch"].astype(np.int64),
        train_loss=columns["loss"],
        train_accuracy=columns[accuracy],
        learning_rate=columns["learning_rate"],
        validation_epochs=np.array(val_epochs, dtype=np.int64),
        validation_loss=(
            np.array(val_loss, dtype=np.float64)
            if val_loss and all(v is not None for v in val_loss)
            else None
        ),
        validation_accuracy=np.array(val_accuracy, dtype=np.float64),
        selected_epoch=entry.get("selected_epoch"),
        label=f"run {run}" + ("" if seed is None else f" (seed {seed})"),
    )


def load_results(path) -> dict:
    """Reads ``results.json``; errors name the file."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise ResultsFormatError(f"results file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ResultsFormatError(f"{path} is not valid JSON: {error}") from error


def learning_rate_title(learning_rate: np.ndarray) -> str:
    """The learning-rate panel's title: its constant value written out when it never changes."""
    if learning_rate.size and np.all(learning_rate == learning_rate[0]):
        return f"learning rate (constant {learning_rate[0]:g})"
    return "learning rate"


def draw_curves(curves: Curves, title: str = "", dpi: int = figures.DEFAULT_DPI):
    """Three panels: loss, segment accuracy (train and validation), learning rate (from 0, its
    values written out: no offset or exponent label); a dashed line marks the selected
    epoch."""
    figure = figures.new_figure(*CURVES_INCHES, dpi=dpi)
    loss_axes, accuracy_axes, rate_axes = figure.subplots(1, 3)
    loss_axes.plot(curves.epochs, curves.train_loss, label="train")
    if curves.validation_loss is not None and curves.validation_loss.size:
        loss_axes.plot(curves.validation_epochs, curves.validation_loss, "o-", label="validation")
    accuracy_axes.plot(curves.epochs, 100 * curves.train_accuracy, label="train")
    if curves.validation_accuracy.size:
        accuracy_axes.plot(
            curves.validation_epochs, 100 * curves.validation_accuracy, "o-", label="validation"
        )
    rate_axes.plot(curves.epochs, curves.learning_rate, color="tab:green")
    highest = float(curves.learning_rate.max())
    rate_axes.set_ylim(0, 1.15 * highest if highest > 0 else 1.0)
    rate_axes.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    for axes, name in (
        (loss_axes, "loss"),
        (accuracy_axes, "segment accuracy (%)"),
        (rate_axes, learning_rate_title(curves.learning_rate)),
    ):
        axes.set_title(name, fontsize=9)
        axes.set_xlabel("epoch (0-based)", fontsize=8)
        axes.tick_params(labelsize=7)
        if curves.selected_epoch is not None:
            axes.axvline(
                curves.selected_epoch,
                color="grey",
                linestyle="--",
                linewidth=0.8,
                label=f"selected epoch {curves.selected_epoch}",
            )
    loss_axes.legend(fontsize=7)
    accuracy_axes.legend(fontsize=7)
    figure.suptitle(f"{title} {curves.label}".strip(), fontsize=10)
    figure.subplots_adjust(left=0.05, right=0.98, top=0.86, bottom=0.14, wspace=0.25)
    return figure


def _find_matrix(data, source):
    if isinstance(data, dict):
        if "confusion_matrix" in data:
            return data["confusion_matrix"], data.get("class_names")
        for value in data.values():  # e.g. {"test": {"confusion_matrix": ...}}
            if isinstance(value, dict) and "confusion_matrix" in value:
                return value["confusion_matrix"], value.get("class_names")
    raise ResultsFormatError(f"{source}: no 'confusion_matrix' key at the top level or one below")


def load_confusion(path) -> tuple[np.ndarray, tuple[str, ...]]:
    """(classes, classes) counts (rows: true, columns: predicted) and the class names."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ResultsFormatError(f"confusion file {path} does not exist")
    names = None
    if path.suffix == ".npy":
        matrix = np.load(path, allow_pickle=False)
    elif path.suffix == ".csv":
        matrix = np.loadtxt(path, delimiter=",", ndmin=2)
    elif path.suffix == ".json":
        matrix, names = _find_matrix(json.loads(path.read_text()), str(path))
    else:
        raise ResultsFormatError(f"confusion file {path} must end in .json, .npy or .csv")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ResultsFormatError(f"{path}: confusion_matrix must be square; got {matrix.shape}")
    if names is None:
        names = ave.CLASS_NAMES if matrix.shape[0] == ave.NUM_CLASSES else None
    if names is None or len(names) != matrix.shape[0]:
        names = tuple(str(i) for i in range(matrix.shape[0]))
    return matrix, tuple(names)


def prepare_confusion(matrix) -> np.ndarray:
    """Rows normalised to sum to 1 (recall per true class); empty rows stay 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def draw_confusion(normalized, class_names, title="", dpi: int = figures.DEFAULT_DPI):
    """Heatmap of the row-normalised confusion matrix with the class names on both axes."""
    figure = figures.new_figure(*CONFUSION_INCHES, dpi=dpi)
    axes = figure.add_axes((0.25, 0.25, 0.65, 0.68))
    image = axes.imshow(normalized, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = range(len(class_names))
    short = [name.split(",")[0] for name in class_names]
    axes.set_xticks(ticks, short, rotation=90, fontsize=6)
    axes.set_yticks(ticks, short, fontsize=6)
    axes.set_xlabel("predicted", fontsize=8)
    axes.set_ylabel("true", fontsize=8)
    seen = normalized.sum(axis=1) > 0
    recall = np.diag(normalized)[seen].mean() if seen.any() else 0.0
    axes.set_title(
        f"{title} confusion (rows sum to 1; mean recall {100 * recall:.1f} %)", fontsize=9
    )
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    return figure
