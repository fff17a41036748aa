"""Wall time of the main job and training throughput, with and without jit_compile.

    python benchmarks/train_benchmark.py [--repeats=1] [--epochs=N]

Runs `python -m trainers.fully` as a user would (synthetic data, every default) in a fresh
TFDS data dir, so the first run includes building `tfds_ave/synthetic`; then the same command
with `--jit_compile` on the built data. Prints and writes the "Training" section of
BENCHMARKS.md: wall time of each command, training videos/s (median over epochs 2.. of
train videos / epoch seconds, validation excluded), selected epoch and test accuracy.
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
_REPEATS = flags.DEFINE_integer("repeats", 1, "Runs per variant (medians are reported).")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Override the main job's epochs.")
_WRITE = flags.DEFINE_boolean("write", True, "Write the section into BENCHMARKS.md.")


def run_main_job(workdir, data_dir, jit, index):
    model_dir = workdir / f"run_{'jit' if jit else 'nojit'}_{index}"
    command = [
        sys.executable,
        "-m",
        "trainers.fully",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        f"--export_dir={workdir / 'saved_models'}",
    ]
    if jit:
        command.append("--jit_compile")
    if _EPOCHS.value:
        command.append(f"--epochs={_EPOCHS.value}")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    results = json.loads((model_dir / "results.json").read_text())
    run = results["runs"][0]
    return {
        "wall_seconds": wall,
        "videos_per_second": run["videos_per_second"],
        "train_seconds": run["train_seconds"],
        "epochs": len(run["epochs"]),
        "selected_epoch": run["selected_epoch"],
        "test_accuracy": run["test_accuracy"],
    }


def main(argv):
    del argv
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="train_benchmark_"))
    data_dir = workdir / "tfds"
    rows = []
    for jit in (False, True):
        measured = [run_main_job(workdir, data_dir, jit, i) for i in range(_REPEATS.value)]
        for i, m in enumerate(measured):
            print(f"jit_compile={jit} run {i}: {json.dumps(m)}", flush=True)
        rows.append((jit, measured))
    epochs = f" --epochs={_EPOCHS.value}" if _EPOCHS.value else ""
    lines = [
        f"Machine: {machine()}; shared with other jobs; no GPU.",
        f"Command: `python benchmarks/train_benchmark.py --repeats={_REPEATS.value}{epochs}`, "
        "which times `python -m trainers.fully" + epochs + " --data_dir=<fresh dir>` "
        "(synthetic data, every other flag at its default: batch 128, 2 steps of 128 videos "
        "per epoch), then the same with `--jit_compile`.",
        "The first no-jit run includes building tfds_ave/synthetic in the fresh data dir; "
        "wall time = the whole command (TF start-up, build, training, validation, test, "
        "export). videos/s = training videos / training seconds per epoch, median over "
        "epochs after the first (validation excluded).",
        "",
        "| jit_compile | runs | wall s (median) | train s | epochs | training videos/s (median) "
        "| selected epoch | test acc. % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for jit, measured in rows:
        accuracies = ", ".join(f"{100 * m['test_accuracy']:.1f}" for m in measured)
        wall = statistics.median(m["wall_seconds"] for m in measured)
        speed = statistics.median(m["videos_per_second"] for m in measured)
        train = statistics.median(m["train_seconds"] for m in measured)
        lines.append(
            f"| {jit} | {len(measured)} | {wall:.0f} | {train:.0f} | {measured[0]['epochs']} | "
            f"{speed:.1f} | {', '.join(str(m['selected_epoch']) for m in measured)} | "
            f"{accuracies} |"
        )
    body = "\n".join(lines)
    print(body)
    if _WRITE.value:
        write_section("Training (benchmarks/train_benchmark.py)", body)


if __name__ == "__main__":
    app.run(main)
