"""The one error type the entry points turn into a one-line message and exit code 2."""


class UsageError(Exception):
    """Bad input from the user (flag value, folder, dataset): nothing was deleted or written."""
