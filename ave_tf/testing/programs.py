"""Runs Python as ``python -m MODULE`` or ``python -c CODE`` does and reports what it cost and
imported.

Used by the CLI tests (a usage error must come before TensorFlow is imported), the hostile
checkpoint tests (peak memory of reading a crafted file) and the benchmarks that measure
them (``benchmarks/cli_errors_benchmark.py``, ``benchmarks/hostile_conversion.py``). The
program runs in a child ``python -c LAUNCHER -m|-c TARGET args...``: the launcher runs the
module with `runpy` (or the code) as ``python`` would and, however the program ends, writes
its peak RSS (Linux's ``VmHWM``) and which of `HEAVY_MODULES` it imported to a file; the
launcher imports nothing of this project, so another checkout (``PYTHONPATH``) can be
measured with it.
"""

import dataclasses
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HEAVY_MODULES = ("tensorflow", "keras", "tensorflow_datasets", "apache_beam", "grpc")
"""Libraries whose import costs seconds and hundreds of MB."""

_LAUNCHER = f"""
import os, runpy, sys
kind, target, report = sys.argv[1], sys.argv[2], os.environ.pop("AVE_TF_IMPORTED_REPORT")
try:
    if kind == "-m":
        sys.argv = [target, *sys.argv[3:]]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *sys.argv[3:]]
        exec(compile(target, "<string>", "exec"), {{"__name__": "__main__"}})
finally:
    with open("/proc/self/status") as status:
        peak = [line.split()[1] for line in status if line.startswith("VmHWM:")]
    with open(report, "w") as file:
        file.write(" ".join([*peak, *(m for m in {HEAVY_MODULES!r} if m in sys.modules)]))
"""


@dataclasses.dataclass(frozen=True)
class ProgramRun:
    """One finished run of a program.

    Args:
        returncode: its exit status.
        stdout, stderr: what it printed.
        imported: the `HEAVY_MODULES` it had imported when it ended.
        seconds: wall time from start to exit.
        peak_rss_bytes: the program's peak resident set size (``VmHWM``), None when it died
            (a signal) before it could report it.
    """

    returncode: int
    stdout: str
    stderr: str
    imported: tuple[str, ...]
    seconds: float
    peak_rss_bytes: int | None

    @property
    def peak_rss_mb(self) -> float:
        """`peak_rss_bytes` in MB (2**20 bytes), NaN when it is unknown."""
        return float("nan") if self.peak_rss_bytes is None else self.peak_rss_bytes / 2**20


def run_program(module, *args, cwd=None, env=None, timeout=60.0) -> ProgramRun:
    """Runs ``python -m module args`` (through the launcher) and waits for it.

    Args:
        module: e.g. ``"trainers.fully"`` or ``"ave_tf.visualize"``.
        args: its command-line arguments.
        cwd: its working directory (default: this one).
        env: its environment (default: this process's).
        timeout: seconds before it is killed (`subprocess.TimeoutExpired`).
    """
    return run_python("-m", module, *args, cwd=cwd, env=env, timeout=timeout)


def run_python(kind: str, target: str, *args, cwd=None, env=None, timeout=60.0) -> ProgramRun:
    """Runs ``python -m target args`` (``kind`` "-m") or ``python -c target args`` ("-c")
    through the launcher and waits for it; the other arguments as for `run_program`."""
    if kind not in ("-m", "-c"):
        raise ValueError(f"kind must be -m or -c; got {kind!r}")
    with tempfile.TemporaryDirectory() as folder:
        report = pathlib.Path(folder) / "imported"
        environment = dict(os.environ if env is None else env, AVE_TF_IMPORTED_REPORT=str(report))
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, kind, target, *map(str, args)],
                cwd=cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
        # (Not wait4's ru_maxrss: Linux counts the forking parent's pages in a child's.)
        peak_kb, *imported = report.read_text().split() if report.exists() else (None,)
    peak = None if peak_kb is None else int(peak_kb) * 1024
    return ProgramRun(process.returncode, stdout, stderr, tuple(imported), seconds, peak)
