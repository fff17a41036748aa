"""What a run reports: results.json and the short table the trainers print.

`<model_dir>/results.json` holds: the resolved config, one entry per seed (per-epoch train and
validation metrics, the selected epoch, its validation and test accuracy, wall time and
training videos/s), the mean ± sample std of the test accuracy over seeds (std null for a
single seed: one run has no spread), and the export path. The per-epoch scalars go to
TensorBoard through `trainers.callbacks.ScalarLogs`.
"""

import statistics

from ave_tf.atomic_files import write_json_atomic


def mean_std(values):
    """(mean, sample std) of `values`; std is None for a single value (no spread)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std needs at least one value")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def format_spread(mean, std, digits=2, unit="") -> str:
    """ "71.88 ± 1.02 %" for several seeds, "71.88 % (1 seed, no spread)" for one.

    Args:
        mean, std: fractions in [0, 1] (printed as percent); std None means one seed.
    """
    if std is None:
        return f"{100 * mean:.{digits}f}{unit} (1 seed, no spread)"
    return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f}{unit}"


def summarize(config, runs, wall_seconds, export_path=None):
    """The results.json dict for finished `runs` (one dict per seed, see `training.train_seed`)."""
    test_mean, test_std = mean_std([r["test_accuracy"] for r in runs])
    val_mean, val_std = mean_std([r["validation_accuracy"] for r in runs])
    speeds = [r["videos_per_second"] for r in runs if r.get("videos_per_second")]
    return {
        "config": config.to_dict(),
        "runs": runs,
        "summary": {
            "seeds": [r["seed"] for r in runs],
            "selected_epochs": [r["selected_epoch"] for r in runs],
            "test_accuracy_mean": test_mean,
            "test_accuracy_std": test_std,
            "validation_accuracy_mean": val_mean,
            "validation_accuracy_std": val_std,
            "videos_per_second": statistics.median(speeds) if speeds else None,
        },
        "wall_seconds": wall_seconds,
        "export_path": None if export_path is None else str(export_path),
    }


def write_results(path, results):
    """Writes results.json atomically; returns its path."""
    return write_json_atomic(path, results)


def format_table(results) -> str:
    """A short text table: one row per seed, then mean ± std."""
    lines = [
        f"{'seed':>6} {'selected epoch':>14} {'val acc %':>9} {'test acc %':>10} "
        f"{'train s':>8} {'videos/s':>9}"
    ]
    for run in results["runs"]:
        speed = run.get("videos_per_second") or 0.0
        lines.append(
            f"{run['seed']:>6} {run['selected_epoch']:>14} "
            f"{100 * run['validation_accuracy']:>9.2f} {100 * run['test_accuracy']:>10.2f} "
            f"{run['train_seconds']:>8.1f} {speed:>9.1f}"
        )
    summary = results["summary"]
    lines.append(
        f"{'mean':>6} {'':>14} {100 * summary['validation_accuracy_mean']:>9.2f} "
        f"{100 * summary['test_accuracy_mean']:>10.2f}"
    )
    accuracy = format_spread(summary["test_accuracy_mean"], summary["test_accuracy_std"], unit=" %")
    seeds = len(results["runs"])
    over = "" if seeds == 1 else f" over {seeds} seeds"
    lines.append(
        f"test segment accuracy: {accuracy}{over}; wall time {results['wall_seconds']:.1f} s"
    )
    if results.get("export_path"):
        lines.append(f"exported: {results['export_path']}")
    return "\n".join(lines)
