"""Ablation rows follow the paper's tables; a tiny ablation runs and writes its table."""

import math

import pytest

from ave_tf import data
from ave_tf.config import (
    AVELFullySupervisedConfig,
    AVELWeaklySupervisedConfig,
    WeaklySupervisedConfig,
)
from ave_tf.testing.random_videos import random_splits
from trainers import ablate, reports
from trainers import config as run_config
from trainers.ablate import run_ablation, variant_config


def test_paper_rows_and_numbers():
    rows = ablate.paper_variants()
    assert len(rows) == 2 * (5 + 4 + 5)
    by_name = {(r.table, r.network, r.name, r.setting): r for r in rows}
    assert by_name[("Table 1", "psp", "w/o PSP", "fully")].paper == 73.7
    assert by_name[("Table 1", "psp", "PSP", "weakly")].paper == 73.5
    assert by_name[("Table 2", "psp", "L_ce", "fully")].paper == 76.6
    assert by_name[("Table 2", "avel", "L_ce + lambda L_avps", "fully")].paper == 71.3
    assert by_name[("Table 2", "psp", "w/o weight. branch", "weakly")].paper == 71.6
    assert by_name[("Table 2", "avel", "w/ weight. branch", "weakly")].paper == 69.2
    assert by_name[("Table 3", "psp", "tau = 0.025", "weakly")].paper == 71.7
    base = run_config.TrainConfig(model=WeaklySupervisedConfig())
    asp = variant_config(by_name[("Table 1", "psp", "ASP", "weakly")], base)
    assert asp.model.tau == -math.inf and asp.model.renormalize is False
    off = variant_config(by_name[("Table 2", "psp", "w/o weight. branch", "weakly")], base)
    assert off.model.weighting_branch is False
    fully = run_config.TrainConfig()
    for name in ("L_ce", "L_ce + lambda L_avps"):  # One switch apart: same tau.
        assert variant_config(by_name[("Table 2", "psp", name, "fully")], fully).model.tau == 0.095
    sapsp = variant_config(by_name[("Table 1", "psp", "SAPSP", "fully")], base)
    psp = variant_config(by_name[("Table 1", "psp", "PSP", "fully")], base)
    assert sapsp.model.self_attention == "official" and sapsp.model.tau == psp.model.tau == 0.095
    # Table 1's PSP and Table 2's "AVPS on" are one config, trained once.
    avps_on = by_name[("Table 2", "psp", "L_ce + lambda L_avps", "fully")]
    assert by_name[("Table 1", "psp", "PSP", "fully")].key == avps_on.key


def test_table2_has_eight_cells_and_table4_shares_them():
    table2 = ablate.paper_variants(tables=(2,))
    assert len(table2) == 8 and len({r.key for r in table2}) == 8
    base = run_config.TrainConfig()
    models = {r.key: variant_config(r, base).model for r in table2}
    avel = {r.name + r.setting: models[r.key] for r in table2 if r.network == "avel"}
    assert avel["L_cefully"] == AVELFullySupervisedConfig()  # avps_weight 0
    assert avel["L_ce + lambda L_avpsfully"].avps_weight == 100.0
    assert avel["w/o weight. branchweakly"] == AVELWeaklySupervisedConfig()
    assert avel["w/ weight. branchweakly"].weighting_branch is True
    assert all(r.key.startswith("avel-") == (r.network == "avel") for r in table2)
    table4 = ablate.paper_variants(tables=(4,))
    assert [(r.network, r.setting, r.paper) for r in table4] == [
        ("avel", "fully", 68.6),
        ("psp", "fully", 77.8),
        ("avel", "weakly", 66.7),
        ("psp", "weakly", 73.5),
    ]
    assert {r.key for r in table4} <= {r.key for r in table2}  # Trained once for both.


@pytest.mark.slow
def test_tiny_ablation_writes_mean_and_std(tmp_path):
    rows = [r for r in ablate.paper_variants(("fully",), (1,)) if r.name in ("w/o PSP", "PSP")]
    base = run_config.TrainConfig(
        epochs=1,
        batch_size=8,
        eval_every=1,
        seeds=(1, 2),
        strategy="one_device",
        model_dir=str(tmp_path / "unused"),
        export_dir="",
    )
    splits = random_splits({"train": 16, "validation": 8, "test": 8}, seed=4)
    outcomes = run_ablation(
        rows,
        {"fully": base},
        tmp_path / "ablation",
        lambda setting: data.InMemorySource(setting, splits),
    )
    assert sorted(outcomes) == sorted(r.key for r in rows)
    text = ablate.markdown_table(rows, outcomes, "tiny")
    assert "| Table 1 | PSP | w/o PSP | fully | 73.7 |" in text and "| 2 |" in text
    one_seed = {key: {"runs": outcome["runs"][:1]} for key, outcome in outcomes.items()}
    assert "(1 seed, no spread) | 1 |" in ablate.markdown_table(rows, one_seed, "tiny")
    for row in rows:
        accuracies = [r["test_accuracy"] for r in outcomes[row.key]["runs"]]
        mean, std = reports.mean_std(accuracies)
        assert f"{100 * mean:.1f} ± {100 * std:.1f}" in text
