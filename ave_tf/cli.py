"""What every command-line program of ave-tf shares: quiet start-up, one error convention.

Import this module first in an entry point (before TensorFlow) and only there; library code
never imports it (it raises `ave_tf.errors.UsageError`):

- Quiet start-up: TensorFlow's C++ log lines (oneDNN banners, ``auto_shard``,
  ``GeneratorDatasetOp`` warnings) are hidden unless ``--verbosity`` (absl's flag, also ``-v``)
  asks for INFO or more, or ``TF_CPP_MIN_LOG_LEVEL`` is already set. oneDNN stays on.
- Bad input (`UsageError`, absl's ``app.UsageError``, a flag error) ends the program with one
  ``error: ...`` line on stderr and exit code 2, before anything is written.
- Ctrl-C ends with one line instead of a traceback (exit code 130).
"""

import os
import sys

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


# TensorFlow reads this once, when it is imported: it must be set before that.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _requested_verbosity(sys.argv) >= 0 else "3")


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

    def guarded_main(argv):
        try:
            return main(argv)
        except (UsageError, app.UsageError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            print(interrupted_message, file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    app.run(guarded_main, flags_parser=parse_flags)
