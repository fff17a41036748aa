"""Seconds and peak RSS of a usage error from every command-line program, and of a REST
prediction from ``ave_tf.predict --server``.

    python benchmarks/cli_errors_benchmark.py                        # writes BENCHMARKS.md
    python benchmarks/cli_errors_benchmark.py --baseline=/path/to/old/checkout

Each mistake (an unknown flag, a bad flag value, a missing file, a text file given as a video,
...) runs the program as ``python -m`` does, in a fresh process (`ave_tf.testing.programs`),
``--rounds`` times: the median wall time, the largest peak RSS of the process (its own
``VmHWM``), its exit code, whether it had imported TensorFlow and its last stderr line.
Weight files are placeholders (empty files of the right names) and the video is a generated
10 s clip, so every mistake is the one named. The REST row predicts 2 videos of a features
file with ``--server`` against ``python -m tfserving_standin.serve`` serving a randomly
initialised PSP export. ``--baseline`` measures another checkout too (its code on
``PYTHONPATH``), e.g. the commit before a change, in the same run.
"""

import contextlib
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ave_tf.testing.programs import run_program  # noqa: E402
from benchmarks.benchmarks_md import machine, write_section  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 3, "Runs per mistake (the median time is reported).")
flags.DEFINE_string("baseline", None, "Another checkout to measure in the same run.")
flags.DEFINE_string("section", "Command-line errors", "BENCHMARKS.md section ('' writes none).")

SECTION_SCRIPT = "benchmarks/cli_errors_benchmark.py"

WEIGHTS = ["--vggish_checkpoint={tmp}/vggish_model.ckpt", "--vgg19_weights={tmp}/vgg19.h5"]
MISTAKES = [  # (program, mistake, arguments; {tmp} is the scratch folder)
    ("trainers.fully", "unknown flag", ["--no_such_flag=1"]),
    ("trainers.fully", "bad flag value", ["--epochs=0"]),
    ("trainers.weakly", "unknown flag", ["--no_such_flag=1"]),
    ("trainers.evaluate", "unknown flag", ["--no_such_flag=1"]),
    ("trainers.evaluate", "missing model", ["--model={tmp}/missing.keras"]),
    ("trainers.ablate", "unknown flag", ["--no_such_flag=1"]),
    ("trainers.ablate", "bad flag value", ["--tables=9"]),
    ("ave_tf.predict", "unknown flag", ["--no_such_flag=1"]),
    ("ave_tf.predict", "missing features file", ["--local={tmp}/model.keras", "{tmp}/missing.npz"]),
    (
        "ave_tf.predict",
        ".txt as --video",
        ["--local={tmp}/model.keras", "--video={tmp}/notes.txt", *WEIGHTS],
    ),
    ("ave_tf.extract", "unknown flag", ["--no_such_flag=1"]),
    ("ave_tf.extract", "missing video", ["--output={tmp}/out.h5", *WEIGHTS, "{tmp}/missing.mp4"]),
    ("ave_tf.extract", ".txt as a video", ["--output={tmp}/out.h5", *WEIGHTS, "{tmp}/notes.txt"]),
    (
        "ave_tf.extract",
        "missing weights",
        [
            "--output={tmp}/out.h5",
            "--vggish_checkpoint={tmp}/missing.ckpt",
            *WEIGHTS[1:],
            "{tmp}/clip.mp4",
        ],
    ),
    ("tfserving_standin.serve", "unknown flag", ["--no_such_flag=1"]),
    ("tfserving_standin.serve", "missing model folder", ["--model_base_path={tmp}/missing"]),
    ("ave_tf.convert", "unknown flag", ["--no_such_flag=1"]),
    (
        "ave_tf.convert",
        "missing checkpoint",
        ["--setting=fully", "{tmp}/missing.pt", "{tmp}/out.keras"],
    ),
    ("ave_tf.visualize", "unknown flag", ["timeline", "--no_such_flag=1"]),
    (
        "ave_tf.visualize",
        "missing features file",
        ["timeline", "--model={tmp}/model.keras", "--features={tmp}/missing.npz"],
    ),
    ("ave_tf.export_video", "unknown flag", ["--no_such_flag=1"]),
    ("ave_tf.export_video", "missing model", ["--model={tmp}/missing.keras", *WEIGHTS]),
    (
        "ave_tf.export_video",
        "missing weights",
        ["--model={tmp}/model.keras", "--vggish_checkpoint={tmp}/missing.ckpt", *WEIGHTS[1:]],
    ),
]


def make_scratch(folder: pathlib.Path) -> None:
    """The files the mistakes name: placeholders, a text file and a 10 s clip."""
    from ave_tf.testing.clips import ClipSpec, write_clip

    for name in ("vggish_model.ckpt", "vgg19.h5", "model.keras"):
        (folder / name).write_bytes(b"")
    (folder / "notes.txt").write_text("not a video\n")
    write_clip(folder / "clip.mp4", ClipSpec(seconds=10, channels=1))
    rng = np.random.default_rng(0)
    np.savez(
        folder / "videos.npz",
        audio=rng.random((2, 10, 128), np.float32),
        visual=rng.random((2, 10, 7, 7, 512), np.float32),
    )


def measure(checkout, module, args, cwd) -> dict:
    """`FLAGS.rounds` runs of one program in `checkout`: median seconds, max peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell
    runs = [run_program(module, *args, cwd=cwd, env=env, timeout=600) for _ in range(FLAGS.rounds)]
    last = runs[-1].stderr.strip().splitlines() or [""]
    return {
        "seconds": statistics.median(run.seconds for run in runs),
        "rss": max(run.peak_rss_mb for run in runs),
        "code": runs[-1].returncode,
        "tensorflow": "tensorflow" in runs[-1].imported,
        "lines": len(runs[-1].stderr.strip().splitlines()),
        "last": last[-1].replace(str(cwd), "TMP"),
    }


@contextlib.contextmanager
def served_model(folder: pathlib.Path, port: int):
    """``python -m tfserving_standin.serve`` on 127.0.0.1:port serving a random PSP export."""
    import keras

    from ave_tf.export import export_saved_model
    from ave_tf.models import fully_supervised_model

    keras.utils.set_random_seed(0)
    export_saved_model(fully_supervised_model(), folder / "saved_models", "psp_fully")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfserving_standin.serve",
            f"--model_base_path={folder}/saved_models/psp_fully",
            f"--port={port}",
        ],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        process.stdout.readline()  # "serving psp_fully version(s) [1] at ..."
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this process's (the programs: unset)
    checkouts = {"this checkout": REPO}
    if FLAGS.baseline:
        checkouts = {"baseline": pathlib.Path(FLAGS.baseline).resolve(), **checkouts}
    with tempfile.TemporaryDirectory() as scratch:
        folder = pathlib.Path(scratch)
        make_scratch(folder)
        rows = []
        for module, mistake, args in MISTAKES:
            args = [arg.format(tmp=folder) for arg in args]
            rows.append(
                (
                    module,
                    mistake,
                    {n: measure(c, module, args, folder) for n, c in checkouts.items()},
                )
            )
            print(rows[-1], flush=True)
        with served_model(folder, free_port()) as url:
            args = [f"--server={url}", "--model=psp_fully", f"{folder}/videos.npz"]
            rows.append(
                (
                    "ave_tf.predict",
                    "REST prediction (2 videos, no mistake)",
                    {n: measure(c, "ave_tf.predict", args, folder) for n, c in checkouts.items()},
                )
            )
            print(rows[-1], flush=True)
    body = report(rows, checkouts)
    print(body)
    if FLAGS.section:
        write_section(f"{FLAGS.section} ({SECTION_SCRIPT})", body)


def checkout_description(checkout: pathlib.Path) -> str:
    """The checkout's git commit (short hash and subject), or its path."""
    done = subprocess.run(
        ["git", "-C", str(checkout), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    )
    return f"commit {done.stdout.strip()[:80]}" if done.returncode == 0 else str(checkout)


def report(rows, checkouts) -> str:
    header = "| program | mistake |"
    rule = "|---|---|"
    for name in checkouts:
        header += f" {name}: s | {name}: peak RSS MB | {name}: TF imported |"
        rule += "---|---|---|"
    header += " exit | stderr lines | last stderr line (this checkout) |"
    rule += "---|---|---|"
    if "baseline" in checkouts:
        header += " last stderr line (baseline) |"
        rule += "---|"
    command = f"python {SECTION_SCRIPT}" + (" --baseline=..." if len(checkouts) > 1 else "")
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end.  ",
    ]
    for name, checkout in checkouts.items():
        lines.append(f"{name}: {checkout_description(checkout)}.  ")
    lines += [
        "",
        f"Each program as `python -m` runs it, in a fresh process, {FLAGS.rounds} runs per row: "
        "median wall time, largest peak RSS (the process's `VmHWM`), whether TensorFlow "
        "was imported, the exit code and stderr of the last run (TF_CPP_MIN_LOG_LEVEL unset). "
        "Weight files are empty placeholders; the video is a generated 10 s clip; TMP is the "
        "scratch folder.",
        "",
        header,
        rule,
    ]
    for module, mistake, results in rows:
        cells = ""
        for name in checkouts:
            result = results[name]
            tf_imported = "yes" if result["tensorflow"] else "no"
            cells += f" {result['seconds']:.2f} | {result['rss']:.0f} | {tf_imported} |"
        own = results["this checkout"]
        last = own["last"].replace("|", "\\|")[:90]
        row = f"| {module} | {mistake} |{cells} {own['code']} | {own['lines']} | `{last}` |"
        if "baseline" in results:
            row += " `{}` |".format(results["baseline"]["last"].replace("|", "\\|")[:90])
        lines.append(row)
    return "\n".join(lines)


if __name__ == "__main__":
    app.run(main)
