"""Runs the paper's ablations (Tables 1-3) and writes a markdown table next to its numbers.

    python -m trainers.ablate                              # synthetic, both settings, 3 seeds
    python -m trainers.ablate --dataset=features --manual_dir=/path/to/AVE --tables=1

Every distinct config is trained (with validation selection and one test evaluation per seed)
under `<model_root>/<setting>-<changes>/`, so an interrupted ablation resumes where it stopped.
Prints and writes (`--output`, default `<model_root>/ABLATION.md`) rows such as

    | Table 1 | ASP | fully | 75.9 | 61.3 ± 1.2 | 3 | 25, 29, 20 |
"""

import pathlib
import sys

from absl import app, flags, logging

from ave_tf import data
from ave_tf.atomic_files import write_text_atomic
from trainers import ablation, run_config, training
from trainers import flags as train_flags
from trainers.errors import UsageError

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_list("settings", ["fully", "weakly"], "Settings to ablate.")
    flags.DEFINE_list("tables", ["1", "2", "3"], "Paper tables to reproduce (1, 2, 3).")
    flags.DEFINE_string("dataset", "synthetic", "synthetic, synthetic_full or features.")
    flags.DEFINE_string("data_dir", None, "TFDS data directory.")
    flags.DEFINE_string("manual_dir", None, "AVE release folder (features).")
    flags.DEFINE_integer("epochs", None, "Epochs per run (default: the recipe's).")
    flags.DEFINE_integer("batch_size", 128, "Global batch size.")
    flags.DEFINE_integer("eval_every", 5, "Validation period in epochs.")
    flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds per variant.")
    flags.DEFINE_string("train_split", "train", "Training split.")
    flags.DEFINE_string("validation_split", "validation", "Selection split.")
    flags.DEFINE_string("test_split", "test", "Test split.")
    flags.DEFINE_string("model_root", "runs/ablation", "Folder of all variant runs.")
    flags.DEFINE_string("output", None, "Markdown file (default <model_root>/ABLATION.md).")
    flags.DEFINE_string("strategy", "auto", "auto, mirrored or one_device.")


def variant_config(variant, base):
    """`base` (a TrainConfig of the variant's setting) with the variant's model changes."""
    model = run_config.model_config_class(variant.setting)().replace(**dict(variant.changes))
    return base.replace(model=model)


def run_ablation(variants, base_configs, model_root, source_for=None):
    """Trains every distinct variant config; returns {variant key: results dict}.

    Args:
        variants: `ablation.Variant`s.
        base_configs: setting -> TrainConfig (recipe, data, seeds) the variants start from.
        model_root: parent folder of the variant runs.
        source_for: setting -> data source (default: the TFDS pipelines of the base config).
    """
    outcomes = {}
    for variant in variants:
        if variant.key in outcomes:
            continue
        config = variant_config(variant, base_configs[variant.setting]).replace(
            model_dir=str(pathlib.Path(model_root) / variant.key), export_dir=""
        )
        source = source_for(variant.setting) if source_for else None
        print(f"== {variant.table} {variant.name} ({variant.setting}): {variant.key}", flush=True)
        outcomes[variant.key] = training.run_training(config, source=source)
    return outcomes


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)
    try:
        settings = [s.strip() for s in FLAGS.settings]
        bad = [s for s in settings if s not in run_config.SETTINGS]
        if bad:
            raise UsageError(f"--settings must name fully and/or weakly; got {bad}")
        try:
            tables = [int(t) for t in FLAGS.tables]
            seeds = tuple(int(s) for s in FLAGS.seeds)
        except ValueError:
            raise UsageError("--tables and --seeds must be integers") from None
        if not set(tables) <= {1, 2, 3}:
            raise UsageError(f"--tables must be among 1, 2, 3; got {tables}")
        epochs = FLAGS.epochs or run_config.default_epochs(FLAGS.dataset)
        try:
            base = {
                setting: run_config.TrainConfig(
                    setting=setting,
                    model=run_config.model_config_class(setting)(),
                    dataset=FLAGS.dataset,
                    data_dir=FLAGS.data_dir,
                    manual_dir=FLAGS.manual_dir,
                    train_split=FLAGS.train_split,
                    validation_split=FLAGS.validation_split,
                    test_split=FLAGS.test_split,
                    epochs=epochs,
                    batch_size=FLAGS.batch_size,
                    eval_every=FLAGS.eval_every,
                    lr_decay_every=run_config.DECAY_EVERY[setting],
                    seeds=seeds,
                    strategy=FLAGS.strategy,
                )
                for setting in settings
            }
        except ValueError as error:
            raise UsageError(str(error)) from None
        sources = {
            s: data.TfdsSource(
                base[s].dataset, s, data_dir=base[s].data_dir, manual_dir=base[s].manual_dir
            )
            for s in settings
        }
        variants = ablation.paper_variants(settings, tables)
        outcomes = run_ablation(variants, base, FLAGS.model_root, sources.__getitem__)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    description = (
        f"Test segment accuracy on tfds_ave/{FLAGS.dataset} ({epochs} epochs, batch "
        f"{FLAGS.batch_size}, model selected on validation every {FLAGS.eval_every} epochs, "
        f"seeds {', '.join(map(str, seeds))}); paper: AVE, official code (reference.md §5)."
    )
    text = ablation.markdown_table(variants, outcomes, description)
    output = pathlib.Path(FLAGS.output or pathlib.Path(FLAGS.model_root) / "ABLATION.md")
    write_text_atomic(output, text)
    print(text)
    print(f"written: {output}")


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=train_flags.parse_flags)
