"""The trainers as users run them: `python -m trainers.fully|weakly|ablate|evaluate`."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ave_tf.testing.documented_output import assert_documented_output

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = [
    "--train_split=train[:32]",
    "--validation_split=validation[:16]",
    "--test_split=test[:16]",
    "--epochs=3",
    "--eval_every=1",
    "--batch_size=8",
]


def environment(quiet=True):
    """The test's environment; quiet=False leaves TF's log level to the program (as a user's
    shell would)."""
    values = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    values.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if quiet:
        values["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return values


def run_module(module, *args, env=None, timeout=300, quiet=True, cwd=REPO):
    values = environment(quiet)
    values.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=values,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(result):
    """stderr lines that are not TensorFlow's start-up chatter."""
    return [
        line
        for line in result.stderr.splitlines()
        if line.startswith("error:") or "Traceback" in line
    ]


def assert_evaluate_reproduces(model, data_dir, test_accuracy):
    """`trainers.evaluate` on an exported `model` (a version or its model directory) reports
    the test accuracy the trainer reported (TINY's test split)."""
    evaluated = run_module(
        "trainers.evaluate", f"--model={model}", f"--data_dir={data_dir}", "--split=test[:16]"
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert f"segment accuracy: {100 * test_accuracy:.2f} %" in evaluated.stdout


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("trainers.fully", ["--strategy=bogus"], "strategy"),
        ("trainers.fully", ["--dataset=imagenet"], "--dataset"),
        ("trainers.fully", ["--tau=abc"], "tau"),
        ("trainers.fully", ["--seeds=1,x"], "--seeds"),
        ("trainers.fully", ["--no_such_flag=1"], "no_such_flag"),
        ("trainers.weakly", ["--epochs=0"], "--epochs"),
        ("trainers.weakly", ["--avps_weight=1"], "avps_weight"),  # A fully-only switch.
        ("trainers.ablate", ["--tables=5"], "--tables"),
        ("trainers.fully", ["--model=avel", "--tau=0.1"], "--tau does not apply to --model=avel"),
        ("trainers.ablate", ["--strategy=bogus"], "--strategy"),
        ("trainers.ablate", ["--tau=0.1"], "tau"),  # Variants set the model, not flags.
    ],
)
def test_bad_flag_values_exit_2_with_one_line(tmp_path, module, args, message):
    where = "--model_root" if module == "trainers.ablate" else "--model_dir"
    result = run_module(module, f"{where}={tmp_path / 'run'}", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = error_lines(result)
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_dataset_that_cannot_be_built_names_missing_files(tmp_path, content):
    release = tmp_path / "release"
    release.mkdir()
    if content:
        (release / content).write_text("not the AVE release")
    result = run_module(
        "trainers.weakly",
        "--dataset=features",
        f"--manual_dir={release}",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--model_dir={tmp_path / 'run'}",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = error_lines(result)
    assert len(lines) == 1 and "Annotations.txt" in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "run").exists()
    assert [p.name for p in release.iterdir()] == ([content] if content else [])


@pytest.mark.slow
def test_fully_cli_end_to_end_export_and_evaluate(tmp_path, data_dir):
    import keras
    import tensorflow as tf

    import ave_tf.models  # noqa: F401

    # The default folders, relative to the working directory, as the README's commands use them.
    run_dir, export_dir = tmp_path / "runs" / "psp_fully", tmp_path / "saved_models"
    common = [f"--data_dir={data_dir}", "--model_dir=runs/psp_fully", *TINY]
    result = run_module("trainers.fully", *common, "--export_dir=saved_models", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_documented_output("train", result.stdout)
    results = json.loads((run_dir / "results.json").read_text())
    run = results["runs"][0]
    assert run["selected_epoch"] in [v["epoch"] for v in run["validations"]]
    assert results["export_path"] == "saved_models/psp_fully/1"
    assert (export_dir / "models.config").is_file()

    # Exported SavedModel == the selected Keras model.
    model = keras.models.load_model(tmp_path / run["selected_model"])
    rng = np.random.default_rng(0)
    inputs = {
        "audio": rng.random((3, 10, 128), np.float32),
        "visual": rng.random((3, 10, 7, 7, 512), np.float32),
    }
    expected = model(inputs, training=False)["segment_probabilities"]
    export_path = str(tmp_path / results["export_path"])
    serving = tf.saved_model.load(export_path).signatures["serving_default"]
    got = serving(**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(got["segment_probabilities"], expected, atol=1e-5)
    cli = subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / "saved_model_cli"),
            "show",
            "--dir",
            export_path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    for name in (
        "audio",
        "visual",
        "segment_probabilities",
        "segment_classes",
        "is_event",
        "video_class",
    ):
        assert name in cli.stdout, cli.stdout

    # A different config in the same model_dir is refused; nothing is deleted.
    refused = run_module("trainers.fully", *common, "--epochs=4", "--export_dir=", cwd=tmp_path)
    assert refused.returncode == 2 and "different config" in refused.stderr
    assert (run_dir / "results.json").is_file()

    assert_evaluate_reproduces(export_path, data_dir, run["test_accuracy"])


@pytest.mark.slow
def test_weakly_cli_end_to_end(tmp_path, data_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = [f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'run'}", *TINY]
    refused = run_module("trainers.weakly", *args, f"--export_dir={blocker / 'models'}")
    assert refused.returncode == 2 and "not writable" in refused.stderr
    assert not (tmp_path / "run").exists()
    result = run_module("trainers.weakly", *args, "--export_dir=", "--seeds=1,2")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [r["seed"] for r in results["runs"]] == [1, 2]
    accuracies = [r["test_accuracy"] for r in results["runs"]]
    assert results["summary"]["test_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert results["summary"]["test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))


@pytest.mark.slow
def test_avel_cli_end_to_end_export_serving_and_evaluate(tmp_path, data_dir):
    import tensorflow as tf

    run_dir, export_dir = tmp_path / "run", tmp_path / "exported"
    args = [f"--data_dir={data_dir}", f"--model_dir={run_dir}", *TINY, "--epochs=2"]
    result = run_module(
        "trainers.weakly", "--model=avel", "--weighting_branch", *args, f"--export_dir={export_dir}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["config"]["network"] == "avel" and results["config"]["model"]["weighting_branch"]
    assert results["export_path"] == str(export_dir / "avel_weakly" / "1")
    run = results["runs"][0]
    # The served signature of an AVEL model has PSP's outputs where they apply.
    serving = tf.saved_model.load(results["export_path"]).signatures["serving_default"]
    for name in ("segment_probabilities", "segment_classes", "is_event", "video_class"):
        assert name in serving.structured_outputs, sorted(serving.structured_outputs)
    assert_evaluate_reproduces(export_dir / "avel_weakly", data_dir, run["test_accuracy"])


@pytest.mark.slow
def test_ablate_table2_synthetic_end_to_end(tmp_path, data_dir):
    """All eight cells of the paper's Table 2 (PSP and AVEL), two seeds, on tiny splits."""
    output = tmp_path / "TABLE2.md"
    result = run_module(
        "trainers.ablate",
        "--tables=2",
        "--seeds=1,2",
        f"--data_dir={data_dir}",
        f"--model_root={tmp_path / 'ablation'}",
        f"--output={output}",
        "--train_split=train[:16]",
        "--validation_split=validation[:8]",
        "--test_split=test[:8]",
        "--epochs=1",
        "--batch_size=8",
        timeout=1800,  # 16 tiny trainings; generous for a loaded CI machine.
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in output.read_text().splitlines() if line.startswith("| Table 2 |")]
    cells = {tuple(cell.strip() for cell in row.split("|")[2:6]) for row in rows}
    assert cells == {
        ("PSP", "L_ce", "fully", "76.6"),
        ("PSP", "L_ce + lambda L_avps", "fully", "77.8"),
        ("AVEL", "L_ce", "fully", "69.8"),
        ("AVEL", "L_ce + lambda L_avps", "fully", "71.3"),
        ("PSP", "w/o weight. branch", "weakly", "71.6"),
        ("PSP", "w/ weight. branch", "weakly", "73.5"),
        ("AVEL", "w/o weight. branch", "weakly", "66.9"),
        ("AVEL", "w/ weight. branch", "weakly", "69.2"),
    }
    runs = sorted(path.parent.name for path in (tmp_path / "ablation").glob("*/results.json"))
    assert len(runs) == 8 and sum(name.startswith("avel-") for name in runs) == 4
    for row in rows:  # Mean ± std over the two seeds, from the runs' own results.
        assert " ± " in row and row.split("|")[7].strip() == "2", row
    config = json.loads(
        (tmp_path / "ablation" / "avel-fully-avps_weight=100.0" / "config.json").read_text()
    )
    assert config["network"] == "avel" and config["model"]["avps_weight"] == 100.0


CHATTER = ("auto_shard", "GeneratorDatasetOp", "oneDNN")


@pytest.mark.slow
def test_main_job_is_quiet_and_ctrl_c_says_how_to_resume(tmp_path, data_dir):
    args = [f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'run'}", "--export_dir="]
    args += [*TINY[:3], "--epochs=6", "--eval_every=1", "--batch_size=8"]
    command = [sys.executable, "-m", "trainers.fully", *args]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=environment(quiet=False),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # Wait for epoch 1's summary line ("4/4 - ...").
            line = process.stdout.readline()
            seen.append(line)
            if line.startswith("4/4"):
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, "".join(seen) + stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("interrupted: run the same command again")
    assert "Traceback" not in stderr and not any(word in stderr for word in CHATTER), stderr
    resumed = run_module("trainers.fully", *args, quiet=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Epoch 1/6" not in resumed.stdout and "Epoch 6/6" in resumed.stdout
    assert "test segment accuracy" in resumed.stdout
    assert not any(word in resumed.stderr for word in CHATTER), resumed.stderr
