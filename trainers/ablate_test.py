"""Ablation rows follow the paper's tables; a tiny ablation runs and writes its table."""

import math

import pytest

from ave_tf import data
from ave_tf.config import WeaklySupervisedConfig
from ave_tf.testing.random_videos import random_splits
from trainers import ablate, reports
from trainers import config as run_config
from trainers.ablate import run_ablation, variant_config


def test_paper_rows_and_numbers():
    rows = ablate.paper_variants()
    assert len(rows) == 2 * (5 + 2 + 5)
    by_name = {(r.table, r.name, r.setting): r for r in rows}
    assert by_name[("Table 1", "w/o PSP", "fully")].paper == 73.7
    assert by_name[("Table 1", "PSP", "weakly")].paper == 73.5
    assert by_name[("Table 2", "AVPS off", "fully")].paper == 76.6
    assert by_name[("Table 2", "weighting off", "weakly")].paper == 71.6
    assert by_name[("Table 3", "tau = 0.025", "weakly")].paper == 71.7
    base = run_config.TrainConfig(model=WeaklySupervisedConfig())
    asp = variant_config(by_name[("Table 1", "ASP", "weakly")], base)
    assert asp.model.tau == -math.inf and asp.model.renormalize is False
    off = variant_config(by_name[("Table 2", "weighting off", "weakly")], base)
    assert off.model.weighting_branch is False
    # Table 1's PSP and Table 2's "AVPS on" are one config, trained once.
    assert by_name[("Table 1", "PSP", "fully")].key == by_name[("Table 2", "AVPS on", "fully")].key


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
    assert "| Table 1 | w/o PSP | fully | 73.7 |" in text and "| 2 |" in text
    one_seed = {key: {"runs": outcome["runs"][:1]} for key, outcome in outcomes.items()}
    assert "(1 seed, no spread) | 1 |" in ablate.markdown_table(rows, one_seed, "tiny")
    for row in rows:
        accuracies = [r["test_accuracy"] for r in outcomes[row.key]["runs"]]
        mean, std = reports.mean_std(accuracies)
        assert f"{100 * mean:.1f} ± {100 * std:.1f}" in text
