"""The one error type the entry points turn into a one-line message and exit code 2."""

from ave_tf.errors import UsageError

__all__ = ["UsageError"]
