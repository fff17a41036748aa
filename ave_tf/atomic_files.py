"""Atomic file writes: a temporary file beside the target, renamed over it on success.

Readers (a watching server, a resumed run, a user's editor) never see a half-written file, and
a failure leaves the previous file, or nothing, in place.
"""

import contextlib
import json
import os
import pathlib
import tempfile
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[pathlib.Path]:
    """Yields a temporary path beside ``path``; renames it to ``path`` if the block succeeds.

    Args:
        path: the file to (re)write; its folder is created if needed.
        suffix: ending of the temporary name, for writers that check it (``".keras"``,
            ``".weights.h5"``, ``".png"``).
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield pathlib.Path(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates 0600 files
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomic(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return pathlib.Path(path)


def write_json_atomic(path: str | os.PathLike, value: Any) -> pathlib.Path:
    """Writes ``value`` as indented, key-sorted JSON to ``path`` atomically; returns the path."""
    return write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The JSON value stored at ``path``, or ``default`` when there is no such file."""
    path = pathlib.Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))
