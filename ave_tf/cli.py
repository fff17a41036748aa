"""What every command-line program of ave-tf shares: quiet start-up, one error convention.

Import this module first in an entry point (before TensorFlow) and only there; library code
never imports it (it raises `ave_tf.errors.UsageError`):

- Quiet start-up: TensorFlow's C++ log lines (oneDNN banners, ``auto_shard``,
  ``GeneratorDatasetOp`` warnings, and the ``absl::InitializeLog`` / ``cudart_stub`` lines its
  import writes straight to file descriptor 2) are hidden unless ``--verbosity`` (absl's flag,
  also ``-v``) asks for INFO or more, or ``TF_CPP_MIN_LOG_LEVEL`` is already set. oneDNN stays
  on. TensorFlow is still imported only when the program first needs it.
- Quiet logs: unless ``--verbosity`` is given, absl logs warnings and errors only, and of the
  libraries' records (TFDS's deprecation notes, Beam's ``apitools not found``) only errors;
  ave-tf's own warnings still show.
- Early errors: an entry point defines and checks its flags, and checks its input files (a
  video: ``ave_tf.extraction.decode.check_video``), importing only absl, NumPy, PyAV and the
  standard library; TensorFlow, Keras, TFDS and Beam are imported inside ``main`` after those
  checks.
- Bad input (`UsageError`, absl's ``app.UsageError``, a flag error) ends the program with one
  ``error: ...`` line on stderr and exit code 2, before anything is written.
- Ctrl-C ends with one line instead of a traceback (exit code 130), also when a finalizer
  swallowed its `KeyboardInterrupt` (see `ave_tf.interrupts`) or while the program starts;
  a second Ctrl-C ends the program at once.
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import pathlib
import sys
import tempfile

from ave_tf import interrupts
from ave_tf.errors import UsageError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _requested_verbosity(argv) -> int:
    """The ``--verbosity``/``-v`` value on the command line (absl's default -1 when absent)."""
    value = None
    for index, arg in enumerate(argv[1:], start=1):
        for name in ("--verbosity", "-v"):
            if arg == name and index + 1 < len(argv):
                value = argv[index + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    try:
        return int(value) if value is not None else -1
    except ValueError:
        return -1


@contextlib.contextmanager
def _stderr_held_back():
    """Holds back what is written to file descriptor 2; replays it if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except Exception:  # Not for a Ctrl-C: that is one line (`_one_line_for_ctrl_c`).
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports ``tensorflow`` (whenever that first happens) with fd 2 held back.

    TensorFlow's native libraries log a few lines at load time through absl before its
    logging is set up, which ``TF_CPP_MIN_LOG_LEVEL`` does not reach.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with _stderr_held_back():
                exec_module(module)

        spec.loader.exec_module = quiet_exec_module
        return spec


if _requested_verbosity(sys.argv) >= 0:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
else:
    # TensorFlow reads this once, when it is imported: it must be set before that.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def _one_line_for_ctrl_c(report):
    """A `sys.excepthook` that prints one line for a Ctrl-C outside `run` (while the program
    imports TensorFlow, say); Python then ends the process by SIGINT as usual."""

    def excepthook(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
        else:
            report(kind, value, traceback)

    return excepthook


sys.excepthook = _one_line_for_ctrl_c(sys.excepthook)


PROJECT_PACKAGES = ("ave_tf", "trainers", "tfds_ave")
"""The packages whose log records `_LibraryChatter` keeps."""


class _LibraryChatter(logging.Filter):
    """Lets through errors, and every record logged by ave-tf's own packages."""

    def __init__(self):
        super().__init__()
        root = pathlib.Path(__file__).resolve().parents[1]
        self._own = tuple(str(root / name) + os.sep for name in PROJECT_PACKAGES)

    def filter(self, record):
        return record.levelno >= logging.ERROR or os.path.realpath(record.pathname).startswith(
            self._own
        )


_LIBRARY_CHATTER = _LibraryChatter()


def _quiet_logs() -> None:
    """Unless ``--verbosity`` was given: absl logs warnings and errors only (TFDS's INFO lines
    drown a trainer's per-epoch lines), and the libraries' warnings are hidden."""
    from absl import flags
    from absl import logging as absl_logging

    if flags.FLAGS["verbosity"].present:
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    absl_logging.get_absl_handler().addFilter(_LIBRARY_CHATTER)  # (once: the same filter)


def parse_flags(argv):
    """``app.run`` flags parser: a flag error is one ``error:`` line and exit code 2."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def run(main, interrupted_message: str = "interrupted") -> None:
    """``absl.app.run(main)`` with the project's conventions (see the module docstring).

    Args:
        main: ``main(argv) -> int | None``, the program's body.
        interrupted_message: the line printed on Ctrl-C (e.g. how to resume).
    """
    from absl import app

    def interrupted():
        print(interrupted_message, file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)

    def guarded_main(argv):
        _quiet_logs()
        with interrupts.handling_ctrl_c():
            try:
                status = main(argv)
                interrupts.raise_if_requested()  # A Ctrl-C that no safe point acted on.
                return status
            except KeyboardInterrupt:
                interrupted()
            except Exception as error:
                # After a Ctrl-C, an error is its KeyboardInterrupt turned into another (by a
                # bare ``except:``, or C code: a SystemError came out of Keras' train step).
                if interrupts.requested():
                    interrupted()
                if isinstance(error, (UsageError, app.UsageError)):
                    print(f"error: {error}", file=sys.stderr)
                    sys.exit(EXIT_USAGE)
                raise

    app.run(guarded_main, flags_parser=parse_flags)
