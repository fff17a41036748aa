"""Small file helpers: atomic JSON writes (temp file + rename), so readers never see half a file."""

import json
import os
import pathlib
import tempfile
from typing import Any


def write_json_atomic(path: str | os.PathLike, value: Any) -> pathlib.Path:
    """Writes `value` as indented JSON to `path` through a temp file in the same folder."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(value, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.remove(temp_name)
        raise
    return path


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The JSON value stored at `path`, or `default` when there is no such file."""
    path = pathlib.Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text())


def write_text_atomic(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Writes `text` to `path` through a temp file in the same folder."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.remove(temp_name)
        raise
    return path
