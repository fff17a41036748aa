"""Tests of the `ave_tf.predict` and `tfserving_standin.serve` command lines."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import urllib.request
from unittest import mock

import h5py
import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from serving_helpers import MODEL_NAME, random_videos, serve_command, unused_port

from ave_tf import cli, predict
from ave_tf.events import format_timeline, segment_events
from ave_tf.testing.documented_output import assert_documented_output
from ave_tf.testing.programs import run_program

FLAGS = flags.FLAGS
predict.define_flags()  # the command defines its flags only when run as a program


def _run_predict(argv, capsys):
    """Runs the command as `python -m ave_tf.predict` does (`cli.run`), in this process."""
    with flagsaver.flagsaver(), mock.patch.object(sys, "argv", ["predict", *argv]):
        with pytest.raises(SystemExit) as exited:
            cli.run(predict.main)
    return exited.value.code or 0, capsys.readouterr()


def _run_command(module, *args):
    """`python -m module args` with the environment of a user (TensorFlow's logs not hidden)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _expected_timelines(loaded, audio, visual):
    outputs = loaded.predict("serving_default", {"audio": audio, "visual": visual})
    return [
        format_timeline(segment_events(c, p))
        for c, p in zip(outputs["segment_classes"], outputs["segment_probabilities"], strict=True)
    ]


def test_predict_npz_over_rest_writes_timelines_and_json(server, loaded_v1, tmp_path, capsys):
    audio, visual = random_videos(3, seed=21)
    path = tmp_path / "videos.npz"
    np.savez(path, audio=audio, visual=visual, video_id=np.array(["a", "b", "c"]))
    out = tmp_path / "out" / "predictions.json"
    code, printed = _run_predict(
        [
            "--server",
            server.url,
            "--model",
            MODEL_NAME,
            "--batch_size",
            "2",
            "--request_format",
            "row",
            "--gzip",
            "--json_output",
            str(out),
            str(path),
        ],
        capsys,
    )
    assert code == 0, printed.err
    reports = json.loads(out.read_text())
    assert [r["video_id"] for r in reports] == ["a", "b", "c"]
    assert [r["timeline"] for r in reports] == _expected_timelines(loaded_v1, audio, visual)
    for report in reports:
        assert f"{report['video_id']} ({report['video_class_name']}):" in printed.out
        assert 0 <= report["video_class"] < 28


def test_predict_prints_what_the_documentation_shows(server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    audio, visual = random_videos(2, seed=24)
    pathlib.Path("out").mkdir()
    np.savez("out/videos.npz", audio=audio, visual=visual)  # no ids: "videos[i]"
    code, printed = _run_predict(["--server", server.url, "--binary", "out/videos.npz"], capsys)
    assert code == 0, printed.err
    assert_documented_output("predict a features file", printed.out)


def test_predict_local_h5_single_video_equals_rest(server, loaded_v1, export_dir, tmp_path, capsys):
    audio, visual = random_videos(1, seed=22)
    path = tmp_path / "one.h5"
    with h5py.File(path, "w") as f:
        f["audio"], f["visual"] = audio[0], visual[0]  # a single video without batch axis
    outputs = {}
    for mode in (["--local", str(export_dir / MODEL_NAME)], ["--server", server.url]):
        target = tmp_path / f"{mode[0][2:]}.json"
        code, printed = _run_predict([*mode, "--json_output", str(target), str(path)], capsys)
        assert code == 0, printed.err
        outputs[mode[0]] = json.loads(target.read_text())
    assert outputs["--local"] == outputs["--server"]
    assert outputs["--local"][0]["video_id"] == "one[0]"
    assert outputs["--local"][0]["timeline"] == _expected_timelines(loaded_v1, audio, visual)[0]


def test_predict_over_grpc_equals_rest(server, grpc_server, tmp_path, capsys):
    audio, visual = random_videos(3, seed=23)
    path = tmp_path / "videos.npz"
    np.savez(path, audio=audio, visual=visual)
    outputs = {}
    for mode in (["--grpc", grpc_server.target], ["--server", server.url]):
        target = tmp_path / f"{mode[0][2:]}.json"
        argv = [*mode, "--batch_size", "2", "--json_output", str(target), str(path)]
        code, printed = _run_predict(argv, capsys)
        assert code == 0, printed.err
        outputs[mode[0]] = json.loads(target.read_text())
    assert outputs["--grpc"] == outputs["--server"]
    code, printed = _run_predict(
        ["--grpc", grpc_server.target, "--model", "nope", str(path)], capsys
    )
    assert code == 2 and "NOT_FOUND" in printed.err and "Latest(nope)" in printed.err
    code, printed = _run_predict(["--grpc", "http://x", str(path)], capsys)
    assert code == 2 and printed.err.startswith("error: --grpc: target must be host:port")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"audio": np.zeros((1, 10, 128))}, "missing field 'visual'"),
        (
            {"audio": np.zeros((1, 10, 127)), "visual": np.zeros((1, 10, 7, 7, 512))},
            r"audio must have shape",
        ),
        (
            {"audio": np.zeros((1, 1, 10, 128)), "visual": np.zeros((1, 10, 7, 7, 512))},
            r"field 'audio' has shape \(1, 1, 10, 128\)",
        ),
    ],
)
def test_predict_bad_files_exit_2(server, tmp_path, capsys, fields, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **fields)
    code, printed = _run_predict(["--server", server.url, str(path)], capsys)
    assert code == 2
    assert printed.err.startswith("error: ")
    assert __import__("re").search(message, printed.err), printed.err


def test_predict_server_errors_exit_2(server, tmp_path, capsys):
    path = tmp_path / "v.npz"
    np.savez(path, audio=np.zeros((1, 10, 128)), visual=np.zeros((1, 10, 7, 7, 512)))
    code, printed = _run_predict(["--server", server.url, "--model", "nope", str(path)], capsys)
    assert code == 2 and "Servable not found for request: Latest(nope)" in printed.err


def test_predict_tfds_split(export_dir, tmp_path, capsys):
    out = tmp_path / "tfds.json"
    code, printed = _run_predict(
        [
            "--local",
            str(export_dir / MODEL_NAME),
            "--tfds",
            "tfds_ave/synthetic:test[:4]",
            "--data_dir",
            str(tmp_path / "tfds"),
            "--json_output",
            str(out),
        ],
        capsys,
    )
    assert code == 0, printed.err
    assert len(json.loads(out.read_text())) == 4
    assert_documented_output("predict a TFDS split", printed.out)


def test_serve_command_line(export_dir, tmp_path):
    port = unused_port()
    args = ["--model_base_path", str(export_dir / MODEL_NAME), "--port", str(port)]
    with serve_command(*args, "--max_body_bytes", "1000") as process:
        line = process.stdout.readline()
        assert f"serving {MODEL_NAME} version(s) [1] at http://127.0.0.1:{port}" in line
        assert_documented_output("serve", line)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}") as answer:
            assert json.loads(answer.read())["model_version_status"][0]["state"] == "AVAILABLE"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}:predict", data=b" " * 1001
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request)
        assert raised.value.code == 413
    # Nothing on stderr by default (the "loaded psp_fully version 1" INFO line: --verbosity=0).
    assert process.stderr.read() == ""


def test_serve_refuses_missing_dir_with_one_error_line_exit_2(tmp_path):
    result = _run_command("tfserving_standin.serve", "--model_base_path", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: --model_base_path {tmp_path / 'nope'} is not a directory"
    ]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--no_such_flag=1"], "Unknown command line flag"),
        (["--model_base_path={tmp}/missing"], "missing is not a directory"),
    ],
)
def test_serve_usage_error_is_one_line_exit_2_before_tensorflow(tmp_path, args, words):
    """As `ave_tf/cli_test.py` checks for the library's programs."""
    done = run_program("tfserving_standin.serve", *[a.format(tmp=tmp_path) for a in args])
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and words.format(tmp=tmp_path) in line
    assert done.imported == (), f"imported {done.imported} before: {line}"
    assert not done.stdout


def test_predict_command_line_bad_file_is_one_error_line_exit_2(tmp_path):
    path = tmp_path / "videos.txt"
    path.write_text("not features")
    result = _run_command("ave_tf.predict", "--local", str(tmp_path), str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: a features file must end in .npz, .h5 or .hdf5"
    ]


@pytest.mark.parametrize("taken", ["--port", "--grpc_port"])
def test_serve_port_in_use_is_one_error_line_exit_2_nothing_left_bound(export_dir, taken):
    ports = {"--port": unused_port(), "--grpc_port": unused_port()}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[taken]))
        holder.listen()
        args = [f"{flag}={port}" for flag, port in ports.items()]
        result = _run_command(
            "tfserving_standin.serve", "--model_base_path", str(export_dir / MODEL_NAME), *args
        )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {taken} {ports[taken]}: "), lines
    assert "in use" in lines[0]
    for port in ports.values():  # both free again (the other one was released)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_serve_refuses_a_label_of_a_version_not_loaded(export_dir):
    result = _run_command(
        "tfserving_standin.serve",
        "--model_base_path",
        str(export_dir / MODEL_NAME),
        f"--port={unused_port()}",
        "--version_labels=stable=7",
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: --version_labels: stable=7: cannot assign the label to version 7 of model "
        f"{MODEL_NAME}, which is not available for inference (loaded: [1])"
    ]
    assert result.stderr.splitlines() == errors  # one line: the load's log lines are hidden


def test_predict_over_rest_does_not_import_tensorflow(server, loaded_v1, tmp_path):
    """`python -m ave_tf.predict --server URL FILE` (REST) runs without TensorFlow."""
    audio, visual = random_videos(2, seed=8)
    path = tmp_path / "videos.npz"
    np.savez(path, audio=audio, visual=visual, video_ids=np.array(["p", "q"]))
    done = run_program("ave_tf.predict", "--server", server.url, "--model", MODEL_NAME, path)
    assert done.returncode == 0, done.stderr
    assert done.imported == ()
    lines = [line.strip() for line in done.stdout.splitlines() if not line.startswith("  ")]
    assert [line.split(" ", 1)[0] for line in lines] == ["p", "q"]
    for timeline in _expected_timelines(loaded_v1, audio, visual):
        assert all(f"  {line}" in done.stdout for line in timeline.splitlines())
