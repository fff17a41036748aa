"""The resolved configuration of one training run (`TrainConfig`).

A `TrainConfig` is a frozen, JSON-safe dataclass: the model config of the setting plus the
recipe (data, optimiser, schedule, selection, seeds, distribution). It is written next to the
run's outputs as `<model_dir>/config.json` and compared on restart, so a model_dir never mixes
two configurations.
"""

import dataclasses
import json
from typing import Any

from ave_tf.config import FullySupervisedConfig, WeaklySupervisedConfig

SETTINGS = ("fully", "weakly")
DATASETS = ("synthetic", "synthetic_full", "features")
STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")

OFFICIAL_EPOCHS = 300
"""Epochs of the official recipe (reference.md §4)."""

SYNTHETIC_EPOCHS = 60
"""Default epochs on the small `synthetic` config: keeps the main job within minutes on 2 cores."""

DECAY_EVERY = {"fully": 60, "weakly": 80}
"""Official x0.8 decay period per setting: after 0-based epoch e when (e+1) % period == 0."""

DECAY_UNTIL = 170
"""Official decay cut-off: no decay after 0-based epoch 170 (`epoch < 170`)."""

# Fields that say where things go, not what is computed: they may differ on a restart.
LOCATION_FIELDS = ("model_dir", "export_dir", "data_dir", "manual_dir", "overwrite")


def model_config_class(setting: str):
    """FullySupervisedConfig or WeaklySupervisedConfig for `setting` ("fully" / "weakly")."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}; got {setting!r}")
    return FullySupervisedConfig if setting == "fully" else WeaklySupervisedConfig


def default_epochs(dataset: str) -> int:
    """The recipe's epoch count for a dataset config: 300 for real/full data, fewer for tiny."""
    return SYNTHETIC_EPOCHS if dataset == "synthetic" else OFFICIAL_EPOCHS


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one `trainers.fully` / `trainers.weakly` run needs.

    Args:
        setting: "fully" or "weakly".
        model: the network's `FullySupervisedConfig` / `WeaklySupervisedConfig`.
        dataset: TFDS config of `ave`: "synthetic", "synthetic_full" or "features".
        data_dir, manual_dir: TFDS data dir and the folder holding the AVE release (features).
        train_split, validation_split, test_split: TFDS split names (slicing allowed).
        epochs: training epochs.
        batch_size: GLOBAL batch size (split over replicas); last partial batch dropped.
        learning_rate, adam_epsilon: Adam's base learning rate and epsilon.
        lr_decay_factor, lr_decay_every, lr_decay_until: official step decay: multiply by
            `lr_decay_factor` after 0-based epoch e when (e + 1) % lr_decay_every == 0 and
            e < lr_decay_until; lr_decay_every None = the setting's (60 fully, 80 weakly).
        eval_every: validate after 0-based epoch e when e % eval_every == 0 and e != 0, and
            after the last epoch.
        seeds: one training run per seed; results report mean ± std over them.
        model_dir: where config.json, results.json, TensorBoard logs and backups go
            (None: runs/psp_<setting>).
        export_dir: SavedModel export root (`<export_dir>/psp_<setting>/<version>/`); "" = none.
        strategy: "auto", "mirrored", "multi_worker" or "one_device".
        jit_compile: XLA-compile the train step.
        mixed_precision: mixed float16 (GPU) / bfloat16 (CPU) compute.
        overwrite: allow replacing a model_dir that holds a run with another config.
    """

    setting: str = "fully"
    model: Any = dataclasses.field(default_factory=FullySupervisedConfig)
    dataset: str = "synthetic"
    data_dir: str | None = None
    manual_dir: str | None = None
    train_split: str = "train"
    validation_split: str = "validation"
    test_split: str = "test"
    epochs: int = SYNTHETIC_EPOCHS
    batch_size: int = 128
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-8
    lr_decay_factor: float = 0.8
    lr_decay_every: int | None = None
    lr_decay_until: int = DECAY_UNTIL
    eval_every: int = 5
    seeds: tuple[int, ...] = (1,)
    model_dir: str | None = None
    export_dir: str = "saved_models"
    strategy: str = "auto"
    jit_compile: bool = False
    mixed_precision: bool = False
    overwrite: bool = False

    def __post_init__(self):
        expected = model_config_class(self.setting)
        if not isinstance(self.model, expected):
            raise ValueError(
                f"model must be a {expected.__name__} for setting {self.setting!r}; "
                f"got {type(self.model).__name__}"
            )
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.lr_decay_every is None:
            object.__setattr__(self, "lr_decay_every", DECAY_EVERY[self.setting])
        if self.model_dir is None:
            object.__setattr__(self, "model_dir", f"runs/psp_{self.setting}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}; got {self.dataset!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}; got {self.strategy!r}")
        for name in ("epochs", "batch_size", "eval_every", "lr_decay_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct; got {list(self.seeds)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {self.learning_rate}")
        if not 0 < self.lr_decay_factor <= 1:
            raise ValueError(f"lr_decay_factor must be in (0, 1]; got {self.lr_decay_factor}")
        if not self.model_dir:
            raise ValueError("model_dir must not be empty")

    @property
    def export_name(self) -> str:
        """Name of the served model: psp_fully or psp_weakly."""
        return f"psp_{self.setting}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field (the model config nested under "model")."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["model"] = self.model.to_dict()
        values["seeds"] = list(self.seeds)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Inverse of `to_dict`."""
        values = dict(values)
        setting = values.get("setting", "fully")
        values["model"] = model_config_class(setting).from_dict(values.get("model", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {unknown}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def computation(self) -> dict[str, Any]:
        """The fields that determine what is computed (everything but locations/overwrite)."""
        values = self.to_dict()
        for name in LOCATION_FIELDS:
            values.pop(name)
        return values
