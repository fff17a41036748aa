"""Runs the paper's ablations and comparisons (Tables 1-4) and writes a markdown table next to
its numbers.

    python -m trainers.ablate                              # synthetic, both settings, 3 seeds
    python -m trainers.ablate --dataset=features --manual_dir=/path/to/AVE --tables=1
    python -m trainers.ablate --tables=2                   # PSP and AVEL, +/- AVPS / weighting

Each `Variant` names a paper table row, the network (PSP or the AVEL baseline), the setting,
the config change from that network's defaults in that setting and the paper's segment
accuracy (reference.md §5; paper Tables 2 and 4 for AVEL). Every distinct config is trained
once (with validation selection and one test evaluation per seed) under
`<model_root>/<setting>-<changes>/` (PSP) or `<model_root>/avel-<setting>-<changes>/`, so an
interrupted ablation resumes where it stopped, and reported in every row that names it (e.g.
Table 1's PSP, Table 2's "L_ce + lambda L_avps" and Table 4's PSP). Prints and writes
(`--output`, default `<model_root>/ABLATION.md`) rows such as

    | Table 1 | PSP | ASP | fully | 75.9 | 61.3 ± 1.2 | 3 | 25, 29, 20 |

The recipe flags are the trainers' (`trainers.config`), without the model switches.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

import dataclasses
import math
import pathlib

from absl import flags

from ave_tf.atomic_files import write_text_atomic
from ave_tf.config import model_config_class
from ave_tf.errors import UsageError
from trainers import config as config_lib
from trainers import reports


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the paper's ablation tables.

    Args:
        table: "Table 1" ... "Table 4".
        name: the paper's row name (e.g. "ASP", "tau = 0.025").
        setting: "fully" or "weakly".
        changes: model-config fields that differ from the network's defaults in the setting.
        paper: the paper's test segment accuracy in percent.
        network: "psp" or "avel" (the paper's column in Table 2).
    """

    table: str
    name: str
    setting: str
    changes: tuple[tuple[str, object], ...]
    paper: float
    network: str = "psp"

    @property
    def key(self) -> str:
        """Folder name shared by every variant with the same network, setting and changes."""
        prefix = self.setting if self.network == "psp" else f"{self.network}-{self.setting}"
        if not self.changes:
            return f"{prefix}-default"
        parts = [f"{name}={value}" for name, value in sorted(self.changes)]
        return f"{prefix}-" + ",".join(parts)


TABLE1 = {  # name -> (changes, fully %, weakly %)
    "w/o PSP": ((("tau", math.inf),), 73.7, 70.2),
    "ASP": ((("tau", -math.inf),), 75.9, 71.2),
    "WPSP": ((("tau", 0.0),), 76.0, 71.2),
    # The released code's own SelfAttention (see docs/training.md, "Ablations"), PSP's tau.
    "SAPSP": ((("self_attention", "official"), ("tau", 0.095)), 75.4, 70.8),
    "PSP": ((("tau", 0.095),), 77.8, 73.5),
}
TAU_SWEEP = {
    0.0: (75.9, 71.2),
    0.025: (76.1, 71.7),
    0.075: (75.3, 70.4),
    0.095: (77.8, 73.5),
    0.115: (76.6, 72.8),
}

# setting -> [(row name, network, changes, paper %)]; AVEL's numbers are starred in the paper.
# PSP's rows all use tau 0.095 (Table 1's PSP), so each pair differs in one switch only.
TABLE2 = {
    "fully": [
        ("L_ce", "psp", (("avps_weight", 0.0), ("tau", 0.095)), 76.6),
        ("L_ce + lambda L_avps", "psp", (("tau", 0.095),), 77.8),
        ("L_ce", "avel", (), 69.8),
        ("L_ce + lambda L_avps", "avel", (("avps_weight", 100.0),), 71.3),
    ],
    "weakly": [
        ("w/o weight. branch", "psp", (("tau", 0.095), ("weighting_branch", False)), 71.6),
        ("w/ weight. branch", "psp", (("tau", 0.095),), 73.5),
        ("w/o weight. branch", "avel", (), 66.9),
        ("w/ weight. branch", "avel", (("weighting_branch", True),), 69.2),
    ],
}
TABLE4 = {  # network -> (changes, fully %, weakly %): AVEL as published, PSP as in Table 1
    "avel": ((), 68.6, 66.7),
    "psp": ((("tau", 0.095),), 77.8, 73.5),
}
TABLES = (1, 2, 3, 4)


def paper_variants(settings=("fully", "weakly"), tables=(1, 2, 3)):
    """The rows of the paper's Tables 1-4 for `settings`, in the paper's order."""
    rows = []
    for setting in settings:
        column = 0 if setting == "fully" else 1
        if 1 in tables:
            for name, (changes, *paper) in TABLE1.items():
                rows.append(Variant("Table 1", name, setting, changes, paper[column]))
        if 2 in tables:
            for name, network, changes, paper in TABLE2[setting]:
                rows.append(Variant("Table 2", name, setting, changes, paper, network))
        if 3 in tables:
            for tau, paper in TAU_SWEEP.items():
                rows.append(
                    Variant("Table 3", f"tau = {tau}", setting, (("tau", tau),), paper[column])
                )
        if 4 in tables:
            for network, (changes, *paper) in TABLE4.items():
                name = "PSP (ours)" if network == "psp" else "AVEL"
                rows.append(Variant("Table 4", name, setting, changes, paper[column], network))
    return rows


def markdown_table(variants, outcomes, description) -> str:
    """Markdown: one row per variant with the paper's number and our mean ± std.

    Args:
        variants: `Variant`s in display order.
        outcomes: variant key -> results.json dict of its run (see `reports.summarize`).
        description: one line saying on what data and recipe the numbers were measured.
    """
    lines = [
        description,
        "",
        "| table | network | variant | setting | paper (%) | ours: test acc. mean ± std (%) | "
        "seeds | selected epochs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        outcome = outcomes[variant.key]
        mean, std = reports.mean_std([r["test_accuracy"] for r in outcome["runs"]])
        epochs = ", ".join(str(r["selected_epoch"]) for r in outcome["runs"])
        lines.append(
            f"| {variant.table} | {variant.network.upper()} | {variant.name} | "
            f"{variant.setting} | {variant.paper:.1f} | "
            f"{reports.format_spread(mean, std, digits=1)} | {len(outcome['runs'])} | {epochs} |"
        )
    return "\n".join(lines) + "\n"


def variant_config(variant, base):
    """`base` (a TrainConfig) with the variant's model: its network's defaults in its setting
    plus its changes."""
    model = model_config_class(variant.network, variant.setting)().replace(**dict(variant.changes))
    return base.replace(model=model)


def run_ablation(variants, base, model_root, source_for=None):
    """Trains every distinct variant config; returns {variant key: results dict}.

    Args:
        variants: `Variant`s.
        base: setting -> TrainConfig (recipe, data, seeds) the variants start from.
        model_root: parent folder of the variant runs.
        source_for: setting -> data source (default: the TFDS pipelines of the base config).
    """
    from trainers import training  # (TensorFlow, Keras, TFDS: only once the flags are checked)

    outcomes = {}
    for variant in variants:
        if variant.key in outcomes:
            continue
        config = variant_config(variant, base[variant.setting]).replace(
            model_dir=str(pathlib.Path(model_root) / variant.key), export_dir=""
        )
        source = source_for(variant.setting) if source_for else None
        print(
            f"== {variant.table} {variant.network.upper()} {variant.name} ({variant.setting}): "
            f"{variant.key}",
            flush=True,
        )
        outcomes[variant.key] = training.run_training(config, source=source)
    return outcomes


def define_flags() -> None:
    """This command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_list("settings", ["fully", "weakly"], "Settings to ablate.")
    flags.DEFINE_list(
        "tables",
        ["1", "2", "3"],
        "Paper tables to reproduce: 1 (PSP variants), 2 (AVPS and weighting branch on PSP and "
        "AVEL), 3 (tau), 4 (AVEL and PSP).",
    )
    flags.DEFINE_string("model_root", "runs/ablation", "Folder of all variant runs.")
    flags.DEFINE_string("output", None, "Markdown file (default <model_root>/ABLATION.md).")
    config_lib.define_flags(
        exclude=("model_dir", "export_dir", "overwrite"), defaults={"seeds": (1, 2, 3)}
    )
    flags.adopt_module_key_flags(config_lib)  # --help lists the recipe flags too.


def main(argv):
    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}")
    settings = [s.strip() for s in FLAGS.settings]
    bad = [s for s in settings if s not in config_lib.SETTINGS]
    if bad:
        raise UsageError(f"--settings must name fully and/or weakly; got {bad}")
    try:
        tables = [int(t) for t in FLAGS.tables]
    except ValueError:
        raise UsageError(f"--tables must be integers; got {','.join(FLAGS.tables)!r}") from None
    if not set(tables) <= set(TABLES):
        raise UsageError(f"--tables must be among {', '.join(map(str, TABLES))}; got {tables}")
    base = {s: config_lib.config_from_flags(s) for s in settings}
    from ave_tf import data  # (TensorFlow, TFDS: only once the flags are checked)

    sources = {
        s: data.TfdsSource(
            base[s].dataset, s, data_dir=base[s].data_dir, manual_dir=base[s].manual_dir
        )
        for s in settings
    }
    variants = paper_variants(settings, tables)
    outcomes = run_ablation(variants, base, FLAGS.model_root, sources.__getitem__)
    recipe = base[settings[0]]
    description = (
        f"Test segment accuracy on tfds_ave/{recipe.dataset} ({recipe.epochs} epochs, batch "
        f"{recipe.batch_size}, model selected on validation every {recipe.eval_every} epochs, "
        f"seeds {', '.join(map(str, recipe.seeds))}); paper: AVE, official code (reference.md §5; "
        "AVEL: paper Tables 2 and 4)."
    )
    text = markdown_table(variants, outcomes, description)
    output = pathlib.Path(FLAGS.output or pathlib.Path(FLAGS.model_root) / "ABLATION.md")
    write_text_atomic(output, text)
    print(text)
    print(f"written: {output}")


if __name__ == "__main__":
    define_flags()
    cli.run(main, interrupted_message=config_lib.INTERRUPTED)
