"""Where a trained PSP model lives on disk: a ``.keras`` file, a SavedModel folder, or a
versioned export root (``<export_dir>/<name>/<integer version>/``, as ``ave_tf.export`` writes
it). Path checks only: nothing here imports TensorFlow or Keras, so a wrong path fails before
they load.
"""

import os
import pathlib

from ave_tf.errors import UsageError

KERAS_SUFFIX = ".keras"


class ModelSourceError(UsageError):
    """A path that cannot be loaded as a PSP model (the message names it and why)."""


def is_saved_model(path) -> bool:
    """Whether ``path`` is a TensorFlow SavedModel folder."""
    return (pathlib.Path(path) / "saved_model.pb").is_file()


def saved_model_versions(model_dir) -> list[int]:
    """Sorted integer versions under ``model_dir`` that hold a complete SavedModel."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(
        int(child.name)
        for child in model_dir.iterdir()
        if child.name.isdigit() and is_saved_model(child)
    )


def check_model_name(name: str) -> None:
    """Raises ValueError unless ``name`` is a plain, non-numeric directory name (a model's
    folder in a versioned export root)."""
    if not name or name.startswith(".") or "/" in name or os.sep in name or name.isdigit():
        raise ValueError(f"model name must be a plain, non-numeric directory name; got {name!r}")


def resolve_model_path(path) -> pathlib.Path:
    """The ``.keras`` file or SavedModel folder that ``path`` names; for a versioned export
    root, its newest complete version."""
    path = pathlib.Path(path)
    if (path.suffix == KERAS_SUFFIX and path.is_file()) or is_saved_model(path):
        return path
    versions = saved_model_versions(path)
    if not versions:
        raise ModelSourceError(
            f"{path} is neither a .keras file, a SavedModel folder nor a folder of "
            "SavedModel versions"
        )
    return path / str(versions[-1])
