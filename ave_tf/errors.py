"""The error type for bad input from the user, shared by the library and every program."""


class UsageError(Exception):
    """Bad input from the user (file, flag value, folder, dataset); nothing was written.

    Library code raises it (or a subclass) with a message that names the file, field and
    value at fault; `ave_tf.cli.run` turns it into one ``error: ...`` line and exit code 2.
    """
