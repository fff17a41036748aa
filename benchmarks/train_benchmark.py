"""Wall time, training throughput and accuracy of the trainers, as a user runs them.

    python benchmarks/train_benchmark.py [--parts=main_job,precision,deterministic] \
        [--repeats=1] [--epochs=N]

Part ``main_job``: runs `python -m trainers.fully` as a user would (synthetic data, every
default) in a fresh TFDS data dir, so the first run includes building `tfds_ave/synthetic`; then
the same command with `--jit_compile`, with `--mixed_precision` and with `--deterministic` on
the built data. Writes the
"Training" section of BENCHMARKS.md: wall time of each command, training videos/s (median over
epochs 2.. of train videos / epoch seconds, validation excluded), selected epoch and test
accuracy.

Part ``precision``: whether mixed precision (float16 on a GPU, bfloat16 on a CPU) costs
accuracy. Runs `python -m trainers.fully --dataset=synthetic_full --seed=S` for
``--precision_epochs`` epochs for each seed S without and then with `--mixed_precision` (one
after the other, or all at once with ``--precision_concurrent``), and writes the "Training:
mixed precision" section: test accuracy per seed and mean ± sample std, training videos/s,
wall time. ``--precision_data_dir`` names a data dir where
`tfds_ave/synthetic_full` is built (built there first if it is not: ~70 s, ~4.1 GB).

Part ``deterministic``: the cost of `--deterministic`, as an A/B on the same command: the main
job (``--epochs`` if given) without and with `--deterministic`, interleaved (A, B, A, B, ...)
``--repeats`` times on data built beforehand, so that a change of load hits both alike. Writes
the "Training: --deterministic" section: per run and median training videos/s and wall time,
and the median ratio deterministic / default.

Every figure is read from the runs' results.json.
"""

import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from benchmarks.benchmarks_md import machine, write_section  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
PARTS = ("main_job", "precision", "deterministic")
# The main job's variants: name -> extra trainer flags.
VARIANTS = {
    "float32": [],
    "float32, --jit_compile": ["--jit_compile"],
    "--mixed_precision": ["--mixed_precision"],
    "float32, --deterministic": ["--deterministic"],
}
_PARTS = flags.DEFINE_list("parts", ["main_job"], f"Parts to run, among {', '.join(PARTS)}.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 1, "main_job, deterministic: runs per variant (medians reported)."
)
_EPOCHS = flags.DEFINE_integer(
    "epochs", None, "main_job, deterministic: override the main job's epochs."
)
_PRECISION_EPOCHS = flags.DEFINE_integer("precision_epochs", 8, "precision: training epochs.")
_PRECISION_SEEDS = flags.DEFINE_list("precision_seeds", ["1", "2", "3"], "precision: seeds.")
_PRECISION_TRAIN_SPLIT = flags.DEFINE_string(
    "precision_train_split", "train", "precision: training split (TFDS slicing allowed)."
)
_PRECISION_DATA_DIR = flags.DEFINE_string(
    "precision_data_dir",
    None,
    "precision: data dir holding (or to hold) tfds_ave/synthetic_full; default: a fresh one.",
)
_CONCURRENT = flags.DEFINE_boolean(
    "precision_concurrent",
    False,
    "precision: run every (precision, seed) trainer at the same time (less wall time where "
    "cores are free; their videos/s then do not compare the precisions).",
)
_WORKDIR = flags.DEFINE_string(
    "workdir",
    None,
    "Folder for the runs, kept afterwards: running the same command again resumes unfinished "
    "runs and skips finished ones, and the wall times are those of the last invocation "
    "(default: a temporary folder, deleted at the end).",
)
_WRITE = flags.DEFINE_boolean("write", True, "Write the sections into BENCHMARKS.md.")


def run_trainers(jobs: list[tuple[pathlib.Path, list[str]]], concurrent: bool) -> list[dict]:
    """Runs `python -m trainers.fully <flags> --model_dir=<model_dir>` for each (model_dir,
    flags) in ``jobs``, one after the other or all at once; their progress goes to the terminal.

    Returns:
        Per job, its results.json plus ``wall_seconds``, the command's wall time.
    """
    commands = [
        [sys.executable, "-m", "trainers.fully", *flags_, f"--model_dir={model_dir}"]
        for model_dir, flags_ in jobs
    ]
    walls = []
    if concurrent:
        start = time.perf_counter()
        processes = [_start(command) for command in commands]
        codes = [process.wait() for process in processes]
        walls = [time.perf_counter() - start] * len(commands)
    else:
        codes = []
        for command in commands:
            start = time.perf_counter()
            codes.append(_start(command).wait())
            walls.append(time.perf_counter() - start)
    for command, code in zip(commands, codes, strict=True):
        if code != 0:
            raise RuntimeError(f"{' '.join(command)} failed with exit code {code}")
    return [
        {**json.loads((model_dir / "results.json").read_text()), "wall_seconds": wall}
        for (model_dir, _), wall in zip(jobs, walls, strict=True)
    ]


def _start(command: list[str]) -> subprocess.Popen:
    print("running:", " ".join(command[1:]), flush=True)
    return subprocess.Popen(command, cwd=REPO)


def main_job(workdir: pathlib.Path) -> str:
    """The "Training" section: the main job per variant, ``--repeats`` times each."""
    data_dir = workdir / "tfds"
    epochs = [f"--epochs={_EPOCHS.value}"] if _EPOCHS.value else []
    rows = []
    for index, (name, extra) in enumerate(VARIANTS.items()):
        measured = []
        for repeat in range(_REPEATS.value):
            flags_ = [
                f"--data_dir={data_dir}",
                f"--export_dir={workdir / 'saved_models'}",
                *epochs,
                *extra,
            ]
            (results,) = run_trainers([(workdir / f"main_job_{index}_{repeat}", flags_)], False)
            run = results["runs"][0]
            measured.append({**run, "wall_seconds": results["wall_seconds"]})
            print(
                f"{name} run {repeat}: wall {results['wall_seconds']:.1f} s, "
                f"{run['videos_per_second']:.1f} videos/s",
                flush=True,
            )
        rows.append(
            f"| {name} | {len(measured)} "
            f"| {statistics.median(m['wall_seconds'] for m in measured):.0f} "
            f"| {statistics.median(m['train_seconds'] for m in measured):.0f} "
            f"| {len(measured[0]['epochs'])} "
            f"| {statistics.median(m['videos_per_second'] for m in measured):.1f} "
            f"| {', '.join(str(m['selected_epoch']) for m in measured)} "
            f"| {', '.join(format(100 * m['test_accuracy'], '.1f') for m in measured)} |"
        )
    epochs_text = f" --epochs={_EPOCHS.value}" if _EPOCHS.value else ""
    return "\n".join(
        [
            f"Machine: {machine()}; shared with other jobs while measured; no GPU.",
            f"Command: `python benchmarks/train_benchmark.py --parts=main_job "
            f"--repeats={_REPEATS.value}{epochs_text}`, which times `python -m trainers.fully"
            f"{epochs_text} --data_dir=<fresh dir>` (synthetic data, every other flag at its "
            "default: batch 128, 2 steps of 128 videos per epoch), then the same with "
            "`--jit_compile` and with `--mixed_precision` (bfloat16 on a CPU), back to back.",
            "The first float32 run includes building tfds_ave/synthetic in the fresh data dir; "
            "wall time = the whole command (TF start-up, build, training, validation, test, "
            "export). videos/s = training videos / training seconds per epoch, median over "
            "epochs after the first (validation excluded).",
            "",
            "| variant | runs | wall s (median) | train s | epochs | training videos/s (median) "
            "| selected epoch | test acc. % |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def precision(workdir: pathlib.Path) -> str:
    """The "Training: mixed precision" section: float32 vs mixed precision over seeds.

    One trainer process per (precision, seed), so that ``--precision_concurrent`` can run
    them all at once.
    """
    data_dir = pathlib.Path(_PRECISION_DATA_DIR.value or workdir / "tfds")
    seeds = _PRECISION_SEEDS.value
    common = [
        "--dataset=synthetic_full",
        f"--data_dir={data_dir}",
        f"--train_split={_PRECISION_TRAIN_SPLIT.value}",
        f"--epochs={_PRECISION_EPOCHS.value}",
        "--export_dir=",
    ]
    variants = {"float32": [], "--mixed_precision": ["--mixed_precision"]}
    jobs = [
        (workdir / f"precision_{i}_seed_{seed}", [*common, f"--seed={seed}", *extra])
        for i, extra in enumerate(variants.values())
        for seed in seeds
    ]
    results = run_trainers(jobs, _CONCURRENT.value)
    rows = []
    for index, name in enumerate(variants):
        mine = results[index * len(seeds) : (index + 1) * len(seeds)]
        runs = [result["runs"][0] for result in mine]
        accuracies = [100 * run["test_accuracy"] for run in runs]
        validation = [100 * run["validation_accuracy"] for run in runs]
        rows.append(
            f"| {name} | {', '.join(f'{a:.2f}' for a in accuracies)} "
            f"| **{_mean_std(accuracies)}** | {_mean_std(validation)} "
            f"| {', '.join(str(run['selected_epoch']) for run in runs)} "
            f"| {statistics.median(run['videos_per_second'] for run in runs):.1f} "
            f"| {max(result['wall_seconds'] for result in mine):.0f} |"
        )
        print(rows[-1], flush=True)
    command = " ".join(["python -m trainers.fully", *common[:1], "--data_dir=<dir>", *common[2:]])
    concurrent = " --precision_concurrent" if _CONCURRENT.value else ""
    order = "all at the same time" if _CONCURRENT.value else "one after the other"
    return "\n".join(
        [
            f"Machine: {machine()}; shared with other jobs while measured; no GPU, so "
            "`--mixed_precision` is `mixed_bfloat16` here.",
            "Command: `python benchmarks/train_benchmark.py --parts=precision "
            f"--precision_epochs={_PRECISION_EPOCHS.value} "
            f"--precision_seeds={','.join(seeds)} "
            f"'--precision_train_split={_PRECISION_TRAIN_SPLIT.value}'{concurrent}`, which "
            f"runs `{command} --seed=S` and the same with `--mixed_precision`, for each seed S, "
            f"{order}.",
            "Test segment accuracy of the model selected on validation, per seed and mean ± "
            "sample std over the seeds; videos/s = median over seeds of the training rate "
            "(a speed comparison only when the runs did not overlap: see the Model section); "
            "wall s = the longest run of the row.",
            "",
            "| precision | test acc. % per seed | test acc. % | validation acc. % "
            "| selected epochs | training videos/s | wall s |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def deterministic(workdir: pathlib.Path) -> str:
    """The "Training: --deterministic" section: the main job without and with
    `--deterministic`, interleaved, ``--repeats`` times each."""
    data_dir = workdir / "tfds"
    epochs = [f"--epochs={_EPOCHS.value}"] if _EPOCHS.value else []
    common = [f"--data_dir={data_dir}", "--export_dir=", *epochs]
    # Build the data first, so that no timed run includes the build.
    run_trainers([(workdir / "deterministic_build", [*common, "--epochs=1"])], False)
    variants = {"default": [], "--deterministic": ["--deterministic"]}
    measured = {name: [] for name in variants}
    for repeat in range(_REPEATS.value):
        for index, (name, extra) in enumerate(variants.items()):
            model_dir = workdir / f"deterministic_{index}_{repeat}"
            (results,) = run_trainers([(model_dir, [*common, *extra, "--overwrite"])], False)
            run = results["runs"][0]
            measured[name].append((run["videos_per_second"], results["wall_seconds"]))
            print(
                f"{name} run {repeat}: {run['videos_per_second']:.1f} videos/s, "
                f"wall {results['wall_seconds']:.1f} s",
                flush=True,
            )
    rows = []
    for name, runs in measured.items():
        rows.append(
            f"| {name} | {', '.join(f'{rate:.1f}' for rate, _ in runs)} "
            f"| **{statistics.median(rate for rate, _ in runs):.1f}** "
            f"| {', '.join(f'{wall:.0f}' for _, wall in runs)} "
            f"| {statistics.median(wall for _, wall in runs):.0f} |"
        )
    (default, determ) = (measured[name] for name in variants)
    rate_ratio = statistics.median(b[0] / a[0] for a, b in zip(default, determ, strict=True))
    wall_ratio = statistics.median(b[1] / a[1] for a, b in zip(default, determ, strict=True))
    epochs_text = f" --epochs={_EPOCHS.value}" if _EPOCHS.value else ""
    return "\n".join(
        [
            f"Machine: {machine()}; shared with other jobs while measured; no GPU.",
            "Command: `python benchmarks/train_benchmark.py --parts=deterministic "
            f"--repeats={_REPEATS.value}{epochs_text}`, which runs `python -m trainers.fully"
            f"{epochs_text} --data_dir=<built dir> --export_dir=` (synthetic data, batch 128) "
            "and the same with `--deterministic`, alternating, each run in a fresh model dir.",
            "videos/s = training videos / training seconds per epoch, median over epochs after "
            "the first (validation excluded); wall s = the whole command.",
            "",
            "| variant | training videos/s per run | median | wall s per run | median |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"`--deterministic` / default, median over the pairs: training videos/s x"
            f"{rate_ratio:.2f}, wall time x{wall_ratio:.2f}.",
        ]
    )


def _mean_std(values: list[float]) -> str:
    """ "mean ± sample std", or "value (1 seed, no spread)"."""
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed, no spread)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main(argv):
    del argv
    unknown = sorted(set(_PARTS.value) - set(PARTS))
    if unknown:
        raise app.UsageError(f"--parts: unknown {unknown}; choose among {', '.join(PARTS)}")
    sections = {
        "main_job": ("Training (benchmarks/train_benchmark.py)", main_job),
        "precision": ("Training: mixed precision (benchmarks/train_benchmark.py)", precision),
        "deterministic": (
            "Training: --deterministic (benchmarks/train_benchmark.py)",
            deterministic,
        ),
    }
    with tempfile.TemporaryDirectory(prefix="train_benchmark_") as temporary:
        workdir = pathlib.Path(_WORKDIR.value or temporary)
        for part in _PARTS.value:
            title, measure = sections[part]
            body = measure(workdir)
            print(body, flush=True)
            if _WRITE.value:
                write_section(title, body)


if __name__ == "__main__":
    app.run(main)
