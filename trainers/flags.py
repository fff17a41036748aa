"""absl flags of the two trainers and the one function that turns them into a `TrainConfig`.

`define_train_flags(setting)` declares every flag with the setting's defaults (the official
recipe); `train_config_from_flags(setting, flag_values)` is the only place that reads them.
Flag errors (unknown flags, malformed values) end the program with one line and exit code 2
through `parse_flags`, which the entry points pass to `app.run`.
"""

import sys

from absl import flags

from ave_tf.config import parse_tau
from trainers import run_config
from trainers.errors import UsageError

MODEL_FLAG_HELP = {
    "tau": "PSP threshold tau: a number, 'inf'/'off' (w/o PSP), '-inf' (ASP). 0 = WPSP.",
    "inclusive_threshold": "Keep beta >= tau (paper Eq. 2) instead of the official beta > tau.",
    "renormalize": "L1-normalise gamma's rows again after thresholding.",
    "dropout": "Dropout rate inside PSP (the only dropout of the network).",
    "avga_broadcast": "AVGA audio broadcast: 'position' (official code) or 'channel' (AVEL).",
    "self_attention": "SAPSP ablation: a self-attention block before the Bi-LSTMs.",
    "self_attention_heads": "Heads of the SAPSP self-attention block.",
    "lstm_units": "Hidden units per LSTM direction (PSP width is twice this).",
    "psp_dim": "PSP width d (must equal 2 * lstm_units).",
    "classifier_units": "Hidden width of the two-layer classifier.",
    "epsilon": "Epsilon added to row sums before l1 normalisation.",
    "layer_norm_epsilon": "Epsilon of PSP's shared LayerNorm.",
    "avps_weight": "lambda: weight of the AVPS loss (0 turns it off).",
    "weighting_branch": "Weakly: multiply segment scores by the weighting branch (Eq. 5).",
    "weighting_relu": "Weakly: the official ReLU before the weighting branch's sigmoid.",
}


def _model_fields(setting):
    import dataclasses

    return dataclasses.fields(run_config.model_config_class(setting))


def define_train_flags(setting: str, flag_values=flags.FLAGS) -> None:
    """Declares the trainer's flags in `flag_values` with `setting`'s defaults."""
    defaults = run_config.model_config_class(setting)()
    f = flag_values
    flags.DEFINE_string(
        "dataset",
        "synthetic",
        "TFDS config of ave: synthetic (small, built on the fly), synthetic_full (4,143 "
        "random videos) or features (the real AVE release, needs --manual_dir).",
        flag_values=f,
    )
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's).", flag_values=f)
    flags.DEFINE_string(
        "manual_dir",
        None,
        "Folder holding the AVE release files (for --dataset=features).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "train_split", "train", "Training split (TFDS slicing allowed).", flag_values=f
    )
    flags.DEFINE_string("validation_split", "validation", "Model-selection split.", flag_values=f)
    flags.DEFINE_string(
        "test_split", "test", "Split evaluated once, on the selected model.", flag_values=f
    )
    flags.DEFINE_integer(
        "epochs",
        None,
        f"Training epochs (default: {run_config.OFFICIAL_EPOCHS}, the official recipe; "
        f"{run_config.SYNTHETIC_EPOCHS} on the small synthetic config).",
        flag_values=f,
    )
    flags.DEFINE_integer("batch_size", 128, "Global batch size (official: 128).", flag_values=f)
    flags.DEFINE_float("learning_rate", 1e-3, "Adam's base learning rate.", flag_values=f)
    flags.DEFINE_float("adam_epsilon", 1e-8, "Adam's epsilon (official: 1e-8).", flag_values=f)
    flags.DEFINE_float(
        "lr_decay_factor", 0.8, "Learning-rate multiplier at each decay.", flag_values=f
    )
    flags.DEFINE_integer(
        "lr_decay_every",
        run_config.DECAY_EVERY[setting],
        "Decay after 0-based epoch e when (e+1) % lr_decay_every == 0 and e < lr_decay_until.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "lr_decay_until",
        run_config.DECAY_UNTIL,
        "No decay from this 0-based epoch on (official: 170).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "eval_every",
        5,
        "Validate after 0-based epoch e when e % eval_every == 0 and e != 0, and after the "
        "last epoch; the best validation accuracy selects the model.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "seed", 1, "Seed of a single run (ignored when --seeds is given).", flag_values=f
    )
    flags.DEFINE_list(
        "seeds", None, "Comma-separated seeds, one run each: mean ± std.", flag_values=f
    )
    flags.DEFINE_string(
        "model_dir",
        f"runs/psp_{setting}",
        "Run folder: config.json, results.json, logs/, backups.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "export_dir",
        "saved_models",
        "SavedModel root for TF Serving ('' = do not export).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "strategy", "auto", "auto, mirrored, multi_worker (TF_CONFIG) or one_device.", flag_values=f
    )
    flags.DEFINE_boolean("jit_compile", False, "XLA-compile the train step.", flag_values=f)
    flags.DEFINE_boolean(
        "mixed_precision", False, "Mixed float16 on GPU / bfloat16 on CPU.", flag_values=f
    )
    flags.DEFINE_boolean(
        "overwrite", False, "Replace a model_dir holding a run with another config.", flag_values=f
    )
    for field in _model_fields(setting):
        default = getattr(defaults, field.name)
        help_text = MODEL_FLAG_HELP.get(field.name, f"Model config field {field.name}.")
        if field.name == "tau":
            flags.DEFINE_string("tau", str(default), help_text, flag_values=f)
        elif isinstance(default, bool):
            flags.DEFINE_boolean(field.name, default, help_text, flag_values=f)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=f)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text, flag_values=f)
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=f)


def train_config_from_flags(setting: str, flag_values=flags.FLAGS) -> run_config.TrainConfig:
    """The `TrainConfig` the parsed flags describe; raises `UsageError` naming a bad value."""
    f = flag_values
    try:
        model_values = {field.name: f[field.name].value for field in _model_fields(setting)}
        model_values["tau"] = parse_tau(model_values["tau"])
        model = run_config.model_config_class(setting)(**model_values)
        if f.seeds:
            try:
                seeds = tuple(int(s) for s in f.seeds)
            except ValueError:
                raise ValueError(f"--seeds must be integers; got {','.join(f.seeds)!r}") from None
        else:
            seeds = (f.seed,)
        if f.dataset not in run_config.DATASETS:
            raise ValueError(f"--dataset must be one of {run_config.DATASETS}; got {f.dataset!r}")
        epochs = f.epochs if f.epochs is not None else run_config.default_epochs(f.dataset)
        return run_config.TrainConfig(
            setting=setting,
            model=model,
            dataset=f.dataset,
            data_dir=f.data_dir,
            manual_dir=f.manual_dir,
            train_split=f.train_split,
            validation_split=f.validation_split,
            test_split=f.test_split,
            epochs=epochs,
            batch_size=f.batch_size,
            learning_rate=f.learning_rate,
            adam_epsilon=f.adam_epsilon,
            lr_decay_factor=f.lr_decay_factor,
            lr_decay_every=f.lr_decay_every,
            lr_decay_until=f.lr_decay_until,
            eval_every=f.eval_every,
            seeds=seeds,
            model_dir=f.model_dir,
            export_dir=f.export_dir or "",
            strategy=f.strategy,
            jit_compile=f.jit_compile,
            mixed_precision=f.mixed_precision,
            overwrite=f.overwrite,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def parse_flags(argv, flag_values=flags.FLAGS):
    """`app.run` flags parser: a flag error is one line on stderr and exit code 2."""
    try:
        return flag_values(argv)
    except flags.Error as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
