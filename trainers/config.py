"""The resolved configuration of one training run (`TrainConfig`) and its command-line flags.

A `TrainConfig` is a frozen, JSON-safe dataclass: the network's model config (whose type says
the network and the setting: `FullySupervisedConfig` -> PSP, "fully";
`AVELWeaklySupervisedConfig` -> AVEL, "weakly"; ...) plus the recipe (data, optimiser,
schedule, selection, seeds, distribution). It is written next to the run's outputs as
`<model_dir>/config.json` and compared on restart, so a model_dir never mixes two
configurations.

Flags are generated from the dataclasses, once, for every entry point: `define_flags` declares
one flag per `TrainConfig` field (help text in the field's metadata) and, for a setting, one per
model-config field of either network (`--model=psp|avel` picks the network; a switch keeps the
chosen network's default unless given, and a switch the network lacks is refused);
`config_from_flags` is the only function that reads them.
"""

import dataclasses
import json
import types
from typing import Any

from absl import flags

from ave_tf.config import (
    MODEL_CONFIGS,
    FullySupervisedConfig,
    WeaklySupervisedConfig,
    model_config_class,
    parse_tau,
)
from ave_tf.errors import UsageError

SETTINGS = {"fully": FullySupervisedConfig, "weakly": WeaklySupervisedConfig}
"""Setting name -> PSP's model config class (the default network)."""

MODELS = ("psp", "avel")
"""Networks a trainer builds (`--model`): PSP, or AVEL, the paper's baseline."""

DATASETS = ("synthetic", "synthetic_full", "features")
STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")

INTERRUPTED = (
    "interrupted: run the same command again to resume from the last finished epoch "
    "(backups in <model_dir>/seed_<s>/backup)"
)
"""The line a trainer prints on Ctrl-C."""

OFFICIAL_EPOCHS = 300
"""Epochs of the official recipe (reference.md §4)."""

SYNTHETIC_EPOCHS = 60
"""Default epochs on the small `synthetic` config: keeps the main job within minutes on 2 cores."""

DECAY_EVERY = {"fully": 60, "weakly": 80}
"""Official x0.8 decay period per setting: after 0-based epoch e when (e+1) % period == 0."""

DECAY_UNTIL = {"fully": 170, "weakly": 200}
"""Official decay cut-off per setting: the fully script decays while `epoch < 170`, the weakly
one while `epoch < 200`. Both give decays after epochs 59, 119 (fully) and 79, 159 (weakly)."""

# Fields that say where things go (or where the data is held), not what is computed: they may
# differ on a restart.
LOCATION_FIELDS = ("model_dir", "export_dir", "data_dir", "manual_dir", "in_memory", "overwrite")

MODEL_FLAG_HELP = {
    "tau": "PSP threshold tau: a number, 'inf'/'off' (w/o PSP), '-inf' (ASP). 0 = WPSP.",
    "inclusive_threshold": "Keep beta >= tau (paper Eq. 2) instead of the official beta > tau.",
    "renormalize": "L1-normalise gamma's rows again after thresholding.",
    "dropout": "Dropout rate inside PSP (the only dropout of the network).",
    "avga_broadcast": "AVGA audio broadcast: 'position' (official code) or 'channel' (AVEL).",
    "self_attention": "SAPSP: off, official (the released code's SelfAttention) or transformer.",
    "self_attention_heads": "Heads of the SAPSP self-attention block.",
    "lstm_units": "Hidden units per LSTM direction (PSP width is twice this).",
    "psp_dim": "PSP width d (must equal 2 * lstm_units).",
    "classifier_units": "Hidden width of the two-layer classifier.",
    "epsilon": "Epsilon added to row sums before l1 normalisation.",
    "layer_norm_epsilon": "Epsilon of PSP's shared LayerNorm.",
    "avps_weight": "lambda: weight of the AVPS loss (0 turns it off).",
    "weighting_branch": "Weakly: multiply segment scores by the weighting branch (Eq. 5).",
    "weighting_relu": "Weakly: the official ReLU before the weighting branch's sigmoid.",
    "video_pooling": "Weakly AVEL: segment scores -> video scores by 'max' (att_Net) or 'mean'.",
}


def setting_of(model_config) -> str:
    """ "fully" or "weakly": the setting a model config's type stands for."""
    if type(model_config) not in MODEL_CONFIGS.values():
        names = ", ".join(c.__name__ for c in MODEL_CONFIGS.values())
        raise ValueError(f"model must be one of {names}; got {type(model_config).__name__}")
    return model_config.SETTING


def default_epochs(dataset: str) -> int:
    """The recipe's epoch count for a dataset config: 300 for real/full data, fewer for tiny."""
    return SYNTHETIC_EPOCHS if dataset == "synthetic" else OFFICIAL_EPOCHS


def _field(default, help_text, **metadata):
    return dataclasses.field(default=default, metadata={"help": help_text, **metadata})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one `trainers.fully` / `trainers.weakly` run needs.

    Every field but `model` is a flag of the same name; its help text is the field's
    metadata (the flag `--model` names the network, psp or avel, that `model` configures).
    Fields left None are resolved in `__post_init__`: `epochs` from the dataset,
    `lr_decay_every` and `lr_decay_until` from the setting, `model_dir` from the network and
    setting.

    Args:
        model: the network's config, e.g. `FullySupervisedConfig` or
            `AVELWeaklySupervisedConfig` (its type is the network and the setting).
        (the others: see each field's help text)
    """

    model: Any = dataclasses.field(default_factory=FullySupervisedConfig)
    dataset: str = _field(
        "synthetic",
        "TFDS config of tfds_ave: synthetic (small, built on the fly), synthetic_full (4,143 "
        "random videos) or features (the real AVE release, needs --manual_dir).",
    )
    data_dir: str | None = _field(None, "TFDS data directory (default: TFDS's).")
    manual_dir: str | None = _field(
        None, "Folder holding the AVE release files (for --dataset=features)."
    )
    in_memory: bool = _field(
        False,
        "Hold the training split in memory (one copy, ~1 MB per video: 3.1 GiB for AVE's "
        "3,339) instead of reading each batch from disk; the batches are the same.",
    )
    train_split: str = _field("train", "Training split (TFDS slicing allowed).")
    validation_split: str = _field("validation", "Model-selection split.")
    test_split: str = _field("test", "Split evaluated once, on the selected model.")
    epochs: int | None = _field(
        None,
        f"Training epochs (default: {OFFICIAL_EPOCHS}, the official recipe; "
        f"{SYNTHETIC_EPOCHS} on the small synthetic config).",
    )
    batch_size: int = _field(128, "Global batch size (official: 128).")
    learning_rate: float = _field(1e-3, "Adam's base learning rate.")
    adam_epsilon: float = _field(1e-8, "Adam's epsilon (official: 1e-8).")
    lr_decay_factor: float = _field(0.8, "Learning-rate multiplier at each decay.")
    lr_decay_every: int | None = _field(
        None,
        "Decay after 0-based epoch e when (e+1) % lr_decay_every == 0 and e < lr_decay_until "
        "(official: 60 fully, 80 weakly).",
        per_setting=True,
    )
    lr_decay_until: int | None = _field(
        None,
        "No decay from this 0-based epoch on (official: 170 fully, 200 weakly).",
        per_setting=True,
    )
    eval_every: int = _field(
        5,
        "Validate after 0-based epoch e when e % eval_every == 0 and e != 0, and after the "
        "last epoch; the best validation accuracy selects the model.",
    )
    seeds: tuple[int, ...] = _field((1,), "Comma-separated seeds, one run each: mean ± std.")
    model_dir: str | None = _field(
        None, "Run folder: config.json, results.json, logs/, per-seed folders.", per_setting=True
    )
    export_dir: str = _field("saved_models", "SavedModel root for TF Serving ('' = no export).")
    strategy: str = _field("auto", "auto, mirrored, multi_worker (TF_CONFIG) or one_device.")
    jit_compile: bool = _field(False, "XLA-compile the train step.")
    mixed_precision: bool = _field(False, "Mixed float16 on GPU / bfloat16 on CPU.")
    deterministic: bool = _field(
        False,
        "TensorFlow op determinism: the same command gives bit-identical runs (and a "
        "resumed run ends bit-identical to an uninterrupted one); slower.",
    )
    overwrite: bool = _field(False, "Replace a model_dir holding a run with another config.")

    def __post_init__(self):
        setting = setting_of(self.model)
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}; got {self.dataset!r}")
        if self.epochs is None:
            object.__setattr__(self, "epochs", default_epochs(self.dataset))
        if self.lr_decay_every is None:
            object.__setattr__(self, "lr_decay_every", DECAY_EVERY[setting])
        if self.lr_decay_until is None:
            object.__setattr__(self, "lr_decay_until", DECAY_UNTIL[setting])
        if self.model_dir is None:
            object.__setattr__(self, "model_dir", f"runs/{self.model.MODEL}_{setting}")
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
    def setting(self) -> str:
        """ "fully" or "weakly", from the model config's type."""
        return setting_of(self.model)

    @property
    def network(self) -> str:
        """ "psp" or "avel", from the model config's type."""
        return self.model.MODEL

    @property
    def export_name(self) -> str:
        """Name of the served model: psp_fully, psp_weakly, avel_fully or avel_weakly."""
        return f"{self.network}_{self.setting}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field, the model config nested under "model" and the
        network and setting it implies under "network" and "setting" (so `from_dict` knows
        the model's type)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["model"] = self.model.to_dict()
        values["seeds"] = list(self.seeds)
        values["network"] = self.network
        values["setting"] = self.setting
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Inverse of `to_dict` (a dict without "network", written before AVEL, is PSP)."""
        values = dict(values)
        setting = values.pop("setting", "fully")
        network = values.pop("network", "psp")
        model_class = model_config_class(network, setting)
        values["model"] = model_class.from_dict(values.get("model", {}))
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


# -- flags ---------------------------------------------------------------------------------


def _define(name, default, annotation, help_text, flag_values):
    """One absl flag for a dataclass field of type `annotation` (None allowed)."""
    kinds = set(annotation.__args__) if isinstance(annotation, types.UnionType) else {annotation}
    kinds.discard(type(None))
    (kind,) = kinds
    if kind is bool:
        flags.DEFINE_boolean(name, default, help_text, flag_values=flag_values)
    elif kind is int:
        flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
    elif kind is float:
        flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
    elif getattr(kind, "__origin__", None) is tuple:
        listed = None if default is None else [str(v) for v in default]
        flags.DEFINE_list(name, listed, help_text, flag_values=flag_values)
    else:
        flags.DEFINE_string(name, default, help_text, flag_values=flag_values)


def define_flags(setting=None, flag_values=flags.FLAGS, exclude=(), defaults=None) -> None:
    """Declares a flag per `TrainConfig` field (and per model-config field for a setting).

    Args:
        setting: "fully" or "weakly": also define the model switches, with the setting's
            defaults everywhere; None (several settings): recipe flags only, the fields
            that depend on the setting default to "the setting's".
        flag_values: where to define them.
        exclude: `TrainConfig` field names that get no flag.
        defaults: field name -> default overriding the dataclass's (not for the per-setting
            fields: left unset, `config_from_flags` resolves them from the network and
            setting).
    """
    defaults = dict(defaults or {})
    resolved = TrainConfig(model=SETTINGS[setting]()) if setting else None
    for field in dataclasses.fields(TrainConfig):
        if field.name == "model" or field.name in exclude:
            continue
        default = field.default
        if resolved is not None and field.metadata.get("per_setting"):
            default = getattr(resolved, field.name)
        default = defaults.get(field.name, default)
        help_text = field.metadata["help"]
        if field.name == "seeds" and "seeds" not in defaults:
            # One run by default: --seed is its shorthand, --seeds (unset) wins when given.
            flags.DEFINE_integer(
                "seed",
                1,
                "Seed of a single run (ignored when --seeds is given).",
                flag_values=flag_values,
            )
            default = None
        _define(field.name, default, field.type, help_text, flag_values)
    if setting is None:
        return
    flags.DEFINE_enum(
        "model",
        MODELS[0],
        MODELS,
        "Network: psp, or avel (att_Net of AVE-ECCV18, the paper's baseline).",
        flag_values=flag_values,
    )
    for name, (field, defaults) in model_switches(setting).items():
        help_text = MODEL_FLAG_HELP[name]
        default = next(iter(defaults.values()))
        if len(defaults) < len(MODELS):
            help_text += f" ({', '.join(defaults)} only)"
        elif len(set(map(str, defaults.values()))) > 1:
            listed = ", ".join(f"{value} for {model}" for model, value in defaults.items())
            help_text += f" (default: {listed})"
            default = None  # Not given: the network's own (absl then prints no default).
        if name == "tau":  # "inf", "-inf", "off" are values too.
            flags.DEFINE_string("tau", str(default), help_text, flag_values=flag_values)
        else:
            _define(name, default, field.type, help_text, flag_values)


def model_switches(setting: str) -> dict[str, tuple[dataclasses.Field, dict[str, Any]]]:
    """Every model-config field of `setting` in any network: name -> (field, {network: its
    default}), PSP's fields first; a field a network lacks has no entry for it."""
    switches = {}
    for network in MODELS:
        model_class = model_config_class(network, setting)
        defaults = model_class()
        for field in dataclasses.fields(model_class):
            _, per_network = switches.setdefault(field.name, (field, {}))
            per_network[network] = getattr(defaults, field.name)
    return switches


def config_from_flags(setting: str, flag_values=flags.FLAGS) -> TrainConfig:
    """The `TrainConfig` of `setting` that the parsed flags describe.

    Fields without a flag keep their dataclass default; model switches without flags (the
    ablation command) give the setting's default PSP config. A model switch not given keeps
    the `--model` network's default (the flag's default is PSP's).

    Raises:
        UsageError: a flag value the config refuses, or a switch the network lacks (the
            message names it).
    """
    defined = {name for name in flag_values}
    try:
        network = flag_values["model"].value if "model" in defined else MODELS[0]
        model_class = model_config_class(network, setting)
        own = {field.name for field in dataclasses.fields(model_class)}
        model_values = {}
        for name in model_switches(setting):
            if name not in defined or not _given(flag_values[name]):
                continue  # The network's own default.
            if name not in own:
                raise UsageError(f"--{name} does not apply to --model={network}")
            model_values[name] = flag_values[name].value
        if "tau" in model_values:
            model_values["tau"] = parse_tau(model_values["tau"])
        values = {
            field.name: flag_values[field.name].value
            for field in dataclasses.fields(TrainConfig)
            if field.name in defined
            and field.name not in ("model", "seeds")
            # Not given: resolved from the network and setting (runs/avel_weakly, ...).
            and (_given(flag_values[field.name]) or not field.metadata.get("per_setting"))
        }
        if "seeds" in defined and flag_values["seeds"].value:
            listed = flag_values["seeds"].value
            try:
                values["seeds"] = tuple(int(s) for s in listed)
            except ValueError:
                raise ValueError(f"--seeds must be integers; got {','.join(listed)!r}") from None
        elif "seed" in defined:
            values["seeds"] = (flag_values["seed"].value,)
        return TrainConfig(model=model_class(**model_values), **values)
    except ValueError as error:
        message = str(error)
        if message.split(" ", 1)[0] in defined:  # "epochs must be >= 1" names its flag.
            message = "--" + message
        raise UsageError(message) from None


def config_from_command_line(setting: str, argv, flag_values=flags.FLAGS) -> TrainConfig:
    """`config_from_flags` of `python -m trainers.<setting>`, whose only arguments are flags.

    Raises:
        UsageError: extra arguments or a bad flag value (`ave_tf.cli.run` prints it).
    """
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}")
    return config_from_flags(setting, flag_values)


def _given(flag) -> bool:
    """Whether a flag was set on the command line (or programmatically, to a non-default)."""
    return bool(flag.present) or flag.value != flag.default
