"""Model selection on the validation split, every N epochs, with best-epoch tracking.

Official scripts evaluate after 0-based epochs 5, 10, 15, ... (``epoch % 5 == 0 and epoch
!= 0``) and keep the checkpoint with the best *test* accuracy. Here the same epochs are
evaluated on the **validation** split (plus the last epoch, so every run selects a model),
the best validation segment accuracy wins (ties: the earliest epoch), and its weights are
kept on disk. The test split is never touched by this module.

The callback persists its state (per-epoch train metrics, validations, best epoch, the best
weights) in ``<run_dir>/selection/`` after every epoch, atomically, so a run restored by
`keras.callbacks.BackupAndRestore` continues with the same history.
"""

import pathlib
import time

import keras

from ave_tf.atomic_files import atomic_path, read_json, write_json_atomic

ACCURACY_KEY = "segment_accuracy"
"""Substring of the logged validation metric that selects the model."""


def should_validate(epoch: int, epochs: int, every: int) -> bool:
    """Whether 0-based `epoch` is a validation epoch: official rule, plus the last epoch."""
    return (epoch % every == 0 and epoch != 0) or epoch == epochs - 1


def selection_accuracy(metrics: dict) -> float:
    """The segment accuracy among `model.evaluate(..., return_dict=True)` results."""
    keys = sorted(k for k in metrics if ACCURACY_KEY in k)
    if not keys:
        raise KeyError(f"no metric containing {ACCURACY_KEY!r} among {sorted(metrics)}")
    return float(metrics[keys[0]])


class ValidationSelection(keras.callbacks.Callback):
    """Validates every `every` epochs and keeps the best model's weights.

    Args:
        validation_data: `tf.data.Dataset` of (inputs, targets) batches.
        epochs: total epochs of the fit call.
        every: validation period (see `should_validate`).
        run_dir: folder for ``selection/state.json`` and the best weights.
        initial_epoch: the epoch training (re)starts from; records at or after it are
            dropped from a restored state.
        examples_per_epoch: training videos per epoch (for videos/s).
    """

    def __init__(
        self, validation_data, epochs, every, run_dir, initial_epoch=0, examples_per_epoch=None
    ):
        super().__init__()
        self.validation_data = validation_data
        self.epochs = epochs
        self.every = every
        self.directory = pathlib.Path(run_dir) / "selection"
        self.state_path = self.directory / "state.json"
        self.examples_per_epoch = examples_per_epoch
        state = read_json(self.state_path, {"epochs": [], "validations": []})
        self.records = [r for r in state["epochs"] if r["epoch"] < initial_epoch]
        self.validations = [v for v in state["validations"] if v["epoch"] < initial_epoch]
        self._epoch_start = None
        self._learning_rate = None
        self.evaluate_fn = None  # (model, dataset) -> metrics dict; default model.evaluate.

    # -- state ---------------------------------------------------------------------------
    @property
    def best(self):
        """The best validation record so far (highest accuracy, earliest on ties) or None."""
        if not self.validations:
            return None
        return max(self.validations, key=lambda v: (v["accuracy"], -v["epoch"]))

    @property
    def selected_epoch(self):
        return None if self.best is None else self.best["epoch"]

    def weights_path(self, epoch: int) -> pathlib.Path:
        return self.directory / f"epoch_{epoch:04d}.weights.h5"

    def restore_selected(self, model=None):
        """Loads the selected epoch's weights into `model` (default: the fitted model)."""
        if self.best is None:
            raise RuntimeError("no validation has run: nothing to select")
        (model or self.model).load_weights(self.weights_path(self.best["epoch"]))

    def _prune(self, epoch):
        # Keep the current best and the best among epochs that a backup already covers
        # (< epoch): a restart may drop the newest records, never older ones.
        keep = {self.best["epoch"]} if self.best else set()
        durable = [v for v in self.validations if v["epoch"] < epoch]
        if durable:
            keep.add(max(durable, key=lambda v: (v["accuracy"], -v["epoch"]))["epoch"])
        for path in self.directory.glob("epoch_*.weights.h5"):
            if int(path.name[6:10]) not in keep:
                path.unlink()

    def _save_state(self):
        write_json_atomic(
            self.state_path, {"epochs": self.records, "validations": self.validations}
        )

    # -- callback hooks ------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds = time.perf_counter() - self._epoch_start
        record = {"epoch": epoch, "seconds": seconds, "learning_rate": self._learning_rate}
        record.update({k: float(v) for k, v in logs.items() if not k.startswith("val_")})
        if self.examples_per_epoch:
            record["videos_per_second"] = self.examples_per_epoch / seconds
        if should_validate(epoch, self.epochs, self.every):
            if self.evaluate_fn is not None:
                metrics = self.evaluate_fn(self.model, self.validation_data)
            else:
                metrics = self.model.evaluate(self.validation_data, verbose=0, return_dict=True)
            accuracy = selection_accuracy(metrics)
            previous = self.best
            self.validations.append(
                {"epoch": epoch, "accuracy": accuracy, **{k: float(v) for k, v in metrics.items()}}
            )
            if previous is None or accuracy > previous["accuracy"]:
                self.directory.mkdir(parents=True, exist_ok=True)
                target = self.weights_path(epoch)
                with atomic_path(target, suffix=".weights.h5") as temporary:
                    self.model.save_weights(temporary)
            for key, value in metrics.items():
                logs[f"val_{key}"] = float(value)
                record[f"val_{key}"] = float(value)
        self.records.append(record)
        self._prune(epoch)
        self._save_state()
