"""Every hostile checkpoint of the tests through ``python -m ave_tf.convert``: exit codes,
tracebacks, crashes, files the payloads would create, and each run's peak RSS.

    python -m benchmarks.hostile_conversion [--write]

writes each file into a temporary folder, converts it (``--setting fully``) in a fresh process
and prints one line per file; ``--write`` puts the summary into BENCHMARKS.md. A file passes
when the run exits with code 2 and one ``error:`` line, no traceback, nothing written.
"""

import collections
import os
import pathlib
import pickle
import subprocess
import sys
import tempfile

import numpy as np

from ave_tf.testing.programs import run_program
from ave_tf.torch_checkpoint import MAX_NESTING
from benchmarks.benchmarks_md import machine, write_section
from tests import hostile_checkpoints as hostile
from tests import hostile_conversion_test as conversion_tests
from tests import torch_checkpoint_fixtures as fixtures
from tests import torch_checkpoint_test as reader_tests

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _files(folder: pathlib.Path) -> dict:
    """name -> writer(path) of every hostile file; payloads would create ``folder/marker*``."""
    files = dict(hostile.HOSTILE_FILES)
    for serialization, write in fixtures.HAND_WRITTEN.items():
        for payload, call in reader_tests.PAYLOADS.items():
            marker = folder / f"marker_{payload}_{serialization}"
            files[f"{payload}_top_{serialization}.pt"] = lambda p, w=write, c=call, m=marker: w(
                p, c(m)
            )
            files[f"{payload}_in_dict_{serialization}.pt"] = lambda p, w=write, c=call, m=marker: w(
                p, collections.OrderedDict(weight=c(m))
            )
        marker = folder / f"marker_function_{serialization}"
        function = fixtures.Call(reader_tests.create_file, str(marker))
        files[f"user_function_{serialization}.pt"] = lambda p, w=write, f=function: w(
            p, collections.OrderedDict(weight=f)
        )
        trap = reader_tests.Trap(str(folder / f"marker_trap_{serialization}"))
        files[f"own_setstate_{serialization}.pt"] = lambda p, w=write, t=trap: w(p, t)
        files[f"nesting_past_bound_{serialization}.pt"] = lambda p, w=write: w(
            p, conversion_tests.nested_lists(MAX_NESTING - 1)
        )
    files["torch_load.pt"] = lambda p: _bytes(p, b"\x80\x02ctorch\nload\nX\x01\x00\x00\x00x\x85R.")
    for name in ("psp_weakly_module_legacy.pt", "psp_weakly_state_dict_zip.pt"):
        data = (fixtures.FIXTURES / name).read_bytes()
        for kept in (0.999, 0.5, 0.02):
            files[f"truncated_{kept}_{name}"] = lambda p, d=data, k=kept: _bytes(
                p, d[: int(len(d) * k)]
            )
    files |= {
        "empty.pt": lambda p: _bytes(p, b""),
        "text.pt": lambda p: _bytes(p, b"hello, world\n"),
        "bytes.pt": lambda p: _bytes(p, bytes(range(256))),
        "plain_pickle.pt": lambda p: _bytes(p, pickle.dumps({"w": [1.0]}, protocol=2)),
        "dict_of_ints.pt": lambda p: fixtures.legacy_file(p, {"epoch": 3}),
        "directory.pt": lambda p: p.mkdir() or p,
        "deep_module_chain.pt": lambda p: conversion_tests.module_chain(p, 70, 1),
        "exploding_module_tree.pt": lambda p: conversion_tests.module_chain(p, 40, 2),
        "too_many_opcodes.pt": lambda p: _bytes(p, hostile.PROTO_2 + b"]0" * 600_000 + b"N."),
        "stack_underflow.pt": lambda p: _bytes(p, hostile.PROTO_2 + b"s."),
        "huge_view_1e7_squared.pt": lambda p: hostile.zip_state_dict_file(
            p, weight=(1, (10**7, 10**7), (0, 0))
        ),
        "object_member.npz": lambda p: _npz(p, np.array([object()], dtype=object)),
        "int_member.npz": lambda p: _npz(p, np.zeros(3, np.int64)),
    }
    return files


CONTROL = fixtures.fixture_path("fully", "module", "legacy")


def _valid_conversion_peak(env) -> int:
    """Peak RSS of converting the committed fully network (must succeed)."""
    with tempfile.TemporaryDirectory() as folder:
        output = pathlib.Path(folder) / "psp_fully.keras"
        done = run_program(
            "ave_tf.convert",
            "--setting",
            "fully",
            CONTROL,
            output,
            env=env,
            cwd=REPO_ROOT,
            timeout=300,
        )
        if done.returncode != 0 or not output.exists():
            raise RuntimeError(f"the valid conversion failed: {done.stderr[-2000:]}")
    return done.peak_rss_bytes


def _bytes(path, data):
    path.write_bytes(data)
    return path


def _npz(path, array):
    np.savez(path, weight=array)
    return path


def main(write: bool) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    rows, failures = [], []
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        output = folder / "out.keras"
        for name, writer in _files(folder).items():
            path = writer(folder / name)
            try:
                done = run_program(
                    "ave_tf.convert",
                    "--setting",
                    "fully",
                    path,
                    output,
                    env=env,
                    cwd=REPO_ROOT,
                    timeout=300,
                )
                code, stderr, peak = done.returncode, done.stderr, done.peak_rss_bytes
            except subprocess.TimeoutExpired:
                code, stderr, peak = "hang", "", None
            lines = stderr.strip().splitlines()
            errors = [line for line in lines if line.startswith("error")]
            ok = code == 2 and "Traceback" not in stderr and errors == lines[-1:]
            ok = ok and not output.exists()
            tensorflow = "tensorflow" if peak and peak > 300 * 2**20 else ""
            rows.append((name, code, peak, tensorflow, ok))
            if not ok:
                failures.append((name, code, stderr[-500:]))
            shown = f"{peak / 2**20:7.1f} MiB" if peak else "   (died)"
            print(f"{'ok  ' if ok else 'FAIL'} {name:42s} exit {code} {shown} {lines[-1:]}")
        markers = sorted(p.name for p in folder.glob("marker*"))
    without_tf = [r[2] for r in rows if r[2] and not r[3]]
    with_tf = [r[2] for r in rows if r[2] and r[3]]
    control = _valid_conversion_peak(env)
    summary = (
        f"{len(rows)} files; {sum(r[4] for r in rows)} answered with exit code 2 and one "
        f"`error:` line; {len(failures)} failures (crash, traceback, hang or other exit code); "
        f"payload files created: {len(markers)}. Peak RSS: at most "
        f"{max(without_tf) / 2**20:.0f} MiB for the {len(without_tf)} refused before TensorFlow "
        f"loads, at most {max(with_tf) / 2**20:.0f} MiB for the {len(with_tf)} refused after "
        f"building the network; converting the valid `{CONTROL.name}` peaks at "
        f"{control / 2**20:.0f} MiB."
    )
    print(summary)
    for failure in failures:
        print("FAILURE", *failure, sep="\n  ")
    if write:
        body = (
            f"Machine: {machine()}. `python -m benchmarks.hostile_conversion --write`: every "
            f"hostile checkpoint of the tests through `python -m ave_tf.convert --setting "
            f"fully`, each in a fresh process, peak RSS from the process's VmHWM.\n\n{summary}"
        )
        write_section("Hostile checkpoints (benchmarks/hostile_conversion.py)", body)
    sys.exit(1 if failures or markers else 0)


if __name__ == "__main__":
    main("--write" in sys.argv[1:])
