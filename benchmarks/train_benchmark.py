"""Wall time of the main job and training throughput, per trainer flag.

    python benchmarks/train_benchmark.py [--repeats=1] [--epochs=N] [--variants=none,jit_compile]
    python benchmarks/train_benchmark.py --epochs=6 --variants=none,deterministic \
        --section="Training: cost of --deterministic"

Runs `python -m trainers.fully` as a user would (synthetic data, every default) in a fresh
TFDS data dir, so the first run includes building `tfds_ave/synthetic`; then the same command
with each variant's flag (`none` = no extra flag) on the built data. Prints and writes a
section of BENCHMARKS.md ("Training" by default): wall time of each command, training
videos/s (median over epochs 2.. of train videos / epoch seconds, validation excluded),
selected epoch and test accuracy.
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
_VARIANTS = flags.DEFINE_list(
    "variants",
    ["none", "jit_compile"],
    "Boolean trainer flags to time, one run set each ('none' = every flag at its default).",
)
_SECTION = flags.DEFINE_string(
    "section", "Training", "BENCHMARKS.md section title (the script's name is appended)."
)


def run_main_job(workdir, data_dir, variant, index):
    model_dir = workdir / f"run_{variant}_{index}"
    command = [
        sys.executable,
        "-m",
        "trainers.fully",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        f"--export_dir={workdir / 'saved_models'}",
    ]
    if variant != "none":
        command.append(f"--{variant}")
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
    for variant in _VARIANTS.value:
        measured = [run_main_job(workdir, data_dir, variant, i) for i in range(_REPEATS.value)]
        for i, m in enumerate(measured):
            print(f"{variant} run {i}: {json.dumps(m)}", flush=True)
        rows.append((variant, measured))
    epochs = f" --epochs={_EPOCHS.value}" if _EPOCHS.value else ""
    options = f"--repeats={_REPEATS.value}{epochs} --variants={','.join(_VARIANTS.value)}"
    if _SECTION.value != "Training":
        options += f' --section="{_SECTION.value}"'
    extra = [f"`--{v}`" for v in _VARIANTS.value if v != "none"]
    lines = [
        f"Machine: {machine()}; shared with other jobs; no GPU.",
        f"Command: `python benchmarks/train_benchmark.py {options}`, "
        "which times `python -m trainers.fully" + epochs + " --data_dir=<fresh dir>` "
        "(synthetic data, every other flag at its default: batch 128, 2 steps of 128 videos "
        f"per epoch), then the same with {' and with '.join(extra) or 'nothing else'}.",
        "The first run includes building tfds_ave/synthetic in the fresh data dir; "
        "wall time = the whole command (TF start-up, build, training, validation, test, "
        "export). videos/s = training videos / training seconds per epoch, median over "
        "epochs after the first (validation excluded).",
        "",
        "| extra flag | runs | wall s (median) | train s | epochs | training videos/s (median) "
        "| selected epoch | test acc. % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, measured in rows:
        accuracies = ", ".join(f"{100 * m['test_accuracy']:.1f}" for m in measured)
        wall = statistics.median(m["wall_seconds"] for m in measured)
        speed = statistics.median(m["videos_per_second"] for m in measured)
        train = statistics.median(m["train_seconds"] for m in measured)
        lines.append(
            f"| {variant} | {len(measured)} | {wall:.0f} | {train:.0f} | {measured[0]['epochs']} | "
            f"{speed:.1f} | {', '.join(str(m['selected_epoch']) for m in measured)} | "
            f"{accuracies} |"
        )
    body = "\n".join(lines)
    print(body)
    if _WRITE.value:
        write_section(f"{_SECTION.value} (benchmarks/train_benchmark.py)", body)


if __name__ == "__main__":
    app.run(main)
