"""Folders that killed ``tfds build`` runs leave behind, and their removal by the next build.

TFDS writes a build into ``<data_dir>/<dataset>/<config>/incomplete.<random>_<version>/`` and
renames it when done; it deletes that folder when the build fails in Python, but a killed build
(SIGKILL, power loss) leaves it, ~1 MB per written video, and no later build removes it.
Kept apart from the builder module, which TFDS's builder tests forbid to use ``os``.
"""

import contextlib
import fcntl
import os
import shutil

from absl import logging
from tensorflow_datasets.core import constants as tfds_constants


@contextlib.contextmanager
def removed_beside(current: os.PathLike | str):
    """Around a build writing into ``current``: removes the other ``incomplete.*`` folders.

    Holds an exclusive ``flock`` on the config's folder for the whole block, so every folder
    removed belongs to a build that is gone; when another process holds the lock (a build of
    the same config is running), nothing is removed and the build goes ahead as TFDS's would.
    Does nothing for a data_dir that is not local.
    """
    current = os.path.normpath(os.fspath(current))
    if not os.path.isdir(current):
        yield
        return
    config_dir, own = os.path.split(current)
    descriptor = os.open(config_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            logging.info("another build of %s is running: leaving its folders", config_dir)
        else:
            _remove_incomplete(config_dir, own)
        yield  # closing the descriptor releases the lock
    finally:
        os.close(descriptor)


def _remove_incomplete(config_dir: str, own: str) -> None:
    for name in sorted(os.listdir(config_dir)):
        path = os.path.join(config_dir, name)
        if name == own or not name.startswith(tfds_constants.INCOMPLETE_PREFIX):
            continue
        if os.path.isdir(path):
            size = sum(
                os.path.getsize(os.path.join(root, file))
                for root, _, files in os.walk(path)
                for file in files
            )
            shutil.rmtree(path)
            logging.warning("removed %s (%.0f MB) left by an interrupted build", path, size / 2**20)
