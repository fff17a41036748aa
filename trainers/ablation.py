"""The paper's ablations (Tables 1-3) as model-config changes, and their markdown report.

Each `Variant` names a paper table row, the setting, the config change from the setting's
defaults and the paper's segment accuracy (reference.md §5). Identical configs (e.g. Table 1's
PSP and Table 2's "AVPS on") are trained once and reported in every row that names them.
"""

import dataclasses
import math

from trainers import results


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the paper's ablation tables.

    Args:
        table: "Table 1", "Table 2" or "Table 3".
        name: the paper's row name (e.g. "ASP", "tau = 0.025").
        setting: "fully" or "weakly".
        changes: model-config fields that differ from the setting's defaults.
        paper: the paper's test segment accuracy in percent.
    """

    table: str
    name: str
    setting: str
    changes: tuple[tuple[str, object], ...]
    paper: float

    @property
    def key(self) -> str:
        """Folder name shared by every variant with the same setting and config changes."""
        if not self.changes:
            return f"{self.setting}-default"
        parts = [f"{name}={value}" for name, value in sorted(self.changes)]
        return f"{self.setting}-" + ",".join(parts)


TABLE1 = {  # name -> (changes, fully %, weakly %)
    "w/o PSP": ((("tau", math.inf),), 73.7, 70.2),
    "ASP": ((("tau", -math.inf),), 75.9, 71.2),
    "WPSP": ((("tau", 0.0),), 76.0, 71.2),
    "SAPSP": ((("self_attention", True), ("tau", 0.095)), 75.4, 70.8),
    "PSP": ((("tau", 0.095),), 77.8, 73.5),
}
TAU_SWEEP = {
    0.0: (75.9, 71.2),
    0.025: (76.1, 71.7),
    0.075: (75.3, 70.4),
    0.095: (77.8, 73.5),
    0.115: (76.6, 72.8),
}


def paper_variants(settings=("fully", "weakly"), tables=(1, 2, 3)):
    """The rows of the paper's Tables 1-3 for `settings`, in the paper's order."""
    rows = []
    for setting in settings:
        column = 0 if setting == "fully" else 1
        if 1 in tables:
            for name, (changes, *paper) in TABLE1.items():
                rows.append(Variant("Table 1", name, setting, changes, paper[column]))
        if 2 in tables:
            if setting == "fully":
                rows.append(Variant("Table 2", "AVPS off", setting, (("avps_weight", 0.0),), 76.6))
                rows.append(Variant("Table 2", "AVPS on", setting, (("tau", 0.095),), 77.8))
            else:
                rows.append(
                    Variant(
                        "Table 2",
                        "weighting off",
                        setting,
                        (("tau", 0.095), ("weighting_branch", False)),
                        71.6,
                    )
                )
                rows.append(Variant("Table 2", "weighting on", setting, (("tau", 0.095),), 73.5))
        if 3 in tables:
            for tau, paper in TAU_SWEEP.items():
                rows.append(
                    Variant("Table 3", f"tau = {tau}", setting, (("tau", tau),), paper[column])
                )
    return rows


def markdown_table(variants, outcomes, description) -> str:
    """Markdown: one row per variant with the paper's number and our mean ± std.

    Args:
        variants: `Variant`s in display order.
        outcomes: variant key -> results.json dict of its run (see `results.summarize`).
        description: one line saying on what data and recipe the numbers were measured.
    """
    lines = [
        description,
        "",
        "| table | variant | setting | paper (%) | ours: test acc. mean ± std (%) | seeds | "
        "selected epochs |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        outcome = outcomes[variant.key]
        mean, std = results.mean_std([r["test_accuracy"] for r in outcome["runs"]])
        epochs = ", ".join(str(r["selected_epoch"]) for r in outcome["runs"])
        lines.append(
            f"| {variant.table} | {variant.name} | {variant.setting} | {variant.paper:.1f} | "
            f"{100 * mean:.1f} ± {100 * std:.1f} | {len(outcome['runs'])} | {epochs} |"
        )
    return "\n".join(lines) + "\n"
