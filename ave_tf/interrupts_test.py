"""Ctrl-C in `cli.run` programs: one line and exit 130, also when a finalizer swallowed it."""

import signal
import subprocess
import sys
import textwrap
from unittest import mock

import numpy as np
import pytest

from ave_tf import cli, interrupts
from ave_tf.errors import UsageError

MESSAGE = "interrupted: run the same command again"


class PressesCtrlC:
    """Sends SIGINT to this process from its finalizer: Python's handler then raises inside
    ``__del__``, which Python reports as unraisable and ignores (as it does in TensorFlow's
    ``ConcreteFunctionGarbageCollector.__del__``, where a user's Ctrl-C got lost)."""

    steps: list = []

    def __del__(self):
        PressesCtrlC.steps.append("pressed")
        signal.raise_signal(signal.SIGINT)
        PressesCtrlC.steps.append("finalizer went on")  # Not reached: the handler raised.


def press_ctrl_c_in_a_finalizer():
    PressesCtrlC.steps = []
    PressesCtrlC()  # Freed, so finalized, at once.
    assert PressesCtrlC.steps == ["pressed"], "the interrupt must arrive inside the finalizer"


def run_cli(main):
    """(exit code, stderr lines) of ``cli.run(main)`` run as a program would run it."""
    with mock.patch.object(sys, "argv", ["program"]), pytest.raises(SystemExit) as exited:
        cli.run(main, interrupted_message=MESSAGE)
    return exited.value.code or 0


def test_ctrl_c_swallowed_by_a_finalizer_still_ends_with_one_line_and_130(capfd):
    finished = []

    def main(argv):
        press_ctrl_c_in_a_finalizer()
        finished.append(True)  # The program's work carried on to its end.
        return 0

    assert run_cli(main) == cli.EXIT_INTERRUPTED
    assert finished == [True]
    assert capfd.readouterr().err.splitlines() == [MESSAGE]  # No "Exception ignored in".


def test_safe_points_stop_a_loop_after_a_swallowed_ctrl_c(capfd):
    steps = []

    def main(argv):
        for step in range(5):
            steps.append(step)
            if step == 1:
                press_ctrl_c_in_a_finalizer()
            interrupts.raise_if_requested()
        return 0

    assert run_cli(main) == cli.EXIT_INTERRUPTED
    assert steps == [0, 1]
    assert capfd.readouterr().err.splitlines() == [MESSAGE]


@pytest.mark.parametrize("error", [ValueError, SystemError, UsageError])
def test_ctrl_c_turned_into_another_error_is_reported_as_the_interrupt(capfd, error):
    def main(argv):
        try:
            signal.raise_signal(signal.SIGINT)
        except:  # noqa: E722  (what some libraries and C extensions do around a call)
            raise error("bad argument to internal function") from None

    assert run_cli(main) == cli.EXIT_INTERRUPTED
    assert capfd.readouterr().err.splitlines() == [MESSAGE]


def test_extraction_stops_after_the_video_of_a_swallowed_ctrl_c(tmp_path):
    from ave_tf import extract

    class Extractor:  # Zeros in the features' shapes; Ctrl-C while extracting video 1.
        calls = 0

        def extract(self, path, start_seconds, silent_audio):
            if Extractor.calls == 1:
                press_ctrl_c_in_a_finalizer()
            Extractor.calls += 1
            return np.zeros((10, 128), np.float32), np.zeros((10, 7, 7, 512), np.float32)

    videos = []
    for index in range(4):
        (tmp_path / f"{index}.mp4").write_bytes(b"")
        videos.append((str(index), tmp_path / f"{index}.mp4"))
    output = tmp_path / "features.h5"
    with interrupts.handling_ctrl_c(), pytest.raises(KeyboardInterrupt):
        extract.extract_to_file(videos, output, Extractor)
    assert Extractor.calls == 2 and len(list(tmp_path.glob("features.h5.parts/*.npz"))) == 2


def run_program(code: str) -> subprocess.CompletedProcess:
    """`python -c code`: its exit code and output."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_without_a_ctrl_c_programs_end_as_before(capfd):
    handler_before = signal.getsignal(signal.SIGINT)

    def bad_input(argv):
        raise UsageError("--x: bad")

    assert run_cli(lambda argv: 3) == 3
    assert run_cli(bad_input) == cli.EXIT_USAGE
    with pytest.raises(ValueError, match="a bug"):
        run_cli(lambda argv: (_ for _ in ()).throw(ValueError("a bug")))
    assert not interrupts.requested()
    interrupts.raise_if_requested()  # Outside `handling_ctrl_c` nothing was recorded.
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert sys.unraisablehook is not None and not interrupts.requested()


def test_an_ignored_ctrl_c_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.handling_ctrl_c():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
        assert not interrupts.requested()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_second_ctrl_c_ends_the_program_at_once(tmp_path):
    # The first Ctrl-C's KeyboardInterrupt is caught (as a long cleanup would outlast it); the
    # second ends the program by SIGINT's default action, not with another KeyboardInterrupt
    # (which would wait for the main thread to run Python code, e.g. after a long op).
    program = textwrap.dedent(
        """
        import signal, sys, threading
        from ave_tf import interrupts

        with interrupts.handling_ctrl_c():
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                print("first", flush=True)
            threading.Timer(0.2, signal.raise_signal, [signal.SIGINT]).start()
            threading.Event().wait(60)
        print("not stopped", flush=True)
        """
    )
    result = run_program(program)
    assert result.returncode == -signal.SIGINT, (result.returncode, result.stderr)
    assert result.stdout == "first\n"


def test_ctrl_c_while_the_program_starts_is_one_line():
    # Before `cli.run` (the entry point still imports TensorFlow, say).
    program = "from ave_tf import cli; import signal; signal.raise_signal(signal.SIGINT)"
    result = run_program(program)
    assert result.returncode == -signal.SIGINT and result.stderr == "interrupted\n", result
