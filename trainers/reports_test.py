"""The printed summary: mean ± sample std over seeds, and no invented spread for one seed."""

import statistics

from trainers import reports
from trainers.config import TrainConfig


def run(seed, test, validation=0.5):
    return {
        "seed": seed,
        "selected_epoch": 3,
        "validation_accuracy": validation,
        "test_accuracy": test,
        "train_seconds": 1.0,
        "videos_per_second": 10.0,
    }


def test_one_seed_says_no_spread():
    summary = reports.summarize(TrainConfig(), [run(1, 0.7188)], wall_seconds=2.0)
    assert summary["summary"]["test_accuracy_std"] is None
    table = reports.format_table(summary)
    assert "test segment accuracy: 71.88 % (1 seed, no spread); wall time 2.0 s" in table
    assert "±" not in table


def test_several_seeds_print_mean_and_sample_std():
    accuracies = [0.70, 0.72, 0.75]
    summary = reports.summarize(
        TrainConfig(seeds=(1, 2, 3)), [run(s, a) for s, a in enumerate(accuracies, 1)], 2.0
    )
    std = statistics.stdev(accuracies)
    assert summary["summary"]["test_accuracy_std"] == std
    expected = f"{100 * statistics.fmean(accuracies):.2f} ± {100 * std:.2f} % over 3 seeds"
    assert f"test segment accuracy: {expected}" in reports.format_table(summary)
