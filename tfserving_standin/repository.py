"""The versions of one model on disk, loaded and kept current like TF Serving's file watcher.

`ModelRepository("psp_fully", "saved_models/psp_fully")` loads the highest integer version
directory (or every version with `all_versions=True`), and `refresh()` — called by a polling
thread after `start()` — loads versions that appeared and unloads those that went away. A new
version is loaded completely before it replaces the old one, so requests never wait on a load.
"""

import dataclasses
import logging
import os
import pathlib
import threading

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2

from ave_tf import predictors
from ave_tf.model_files import saved_model_versions
from ave_tf.serving.rest_format import DEFAULT_SIGNATURE
from tfserving_standin.rest_api import (
    TensorSpec,
    clipped,
    invalid_argument,
    not_found,
)

_TYPE_NAMES = {
    tf.float32: "float",
    tf.float64: "double",
    tf.int32: "int32",
    tf.int64: "int64",
    tf.bool: "bool",
    tf.string: "string",
}


@dataclasses.dataclass
class LoadedVersion:
    """One loaded SavedModel version.

    Attributes:
        version: the integer version (its directory name).
        path: the version directory.
        signatures: callable signatures by name.
        signature_defs: the SavedModel's SignatureDef protos by name (for metadata).
        inputs: per signature, its input specs by name.
    """

    version: int
    path: pathlib.Path
    signatures: dict
    signature_defs: dict
    inputs: dict[str, dict[str, TensorSpec]]

    def predict(self, signature: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs `signature` on named input arrays; returns named output arrays.

        DT_STRING inputs are NumPy object arrays of `bytes`. An input the graph refuses (a
        `tf.errors.InvalidArgumentError`, e.g. a wrong byte length decoded in the graph) is
        TF Serving's INVALID_ARGUMENT: a `RestError` 400 with its one-line message.
        """
        function = self.signatures[signature]
        try:
            outputs = function(**{name: tf.constant(value) for name, value in arrays.items()})
        except tf.errors.InvalidArgumentError as error:  # an in-graph check refused an input
            raise invalid_argument(predictors.graph_error_message(error)) from None
        return {name: tensor.numpy() for name, tensor in outputs.items()}


def _input_specs(signature_def) -> dict[str, TensorSpec]:
    """Per input name, its spec; a DT_STRING input has dtype object and type_name "string"."""
    specs = {}
    for name, info in signature_def.inputs.items():
        dtype = tf.dtypes.as_dtype(info.dtype)
        shape = tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim)
        specs[name] = TensorSpec(
            shape=shape,
            dtype=np.dtype(dtype.as_numpy_dtype),
            type_name=_TYPE_NAMES.get(dtype, dtype.name),
        )
    return specs


def load_version(path: str | os.PathLike, version: int) -> LoadedVersion:
    """Loads the SavedModel at `path` and reads its signature defs.

    Its `serving_default` must answer the PSP outputs (`segment_probabilities`, ...); its
    inputs may be the features (`audio`, `visual`) or anything else (the video-in model).
    """
    path = pathlib.Path(path)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    signature_defs = dict(proto.meta_graphs[0].signature_def)
    serving_default = signature_defs.get(DEFAULT_SIGNATURE)
    if serving_default is None or predictors.SIGNATURE_OUTPUT not in serving_default.outputs:
        raise predictors.ModelSourceError(
            f"SavedModel {path} has no {DEFAULT_SIGNATURE!r} signature with a "
            f"{predictors.SIGNATURE_OUTPUT!r} output"
        )
    loaded = predictors.load_saved_model(path)
    signatures = dict(loaded.signatures)
    # Keep `loaded` alive: the signatures' variables belong to it.
    signatures["__loaded__"] = loaded
    return LoadedVersion(
        version=version,
        path=path,
        signatures=signatures,
        signature_defs=signature_defs,
        inputs={
            name: _input_specs(sig)
            for name, sig in signature_defs.items()
            if name in signatures and not name.startswith("__")
        },
    )


class UnavailableLabelError(ValueError):
    """A version label names a version that is not loaded (TF Serving refuses such a config)."""


class ModelRepository:
    """Serves the versions of one model found under `base_path`.

    Version labels follow TF Serving: at `start()` each must name a loaded version
    (`UnavailableLabelError` otherwise, as TF Serving refuses to start); a label keeps its
    version while the server runs, so once a reload unloads that version, requests for the
    label answer NOT_FOUND (404) like requests for the version itself.

    Args:
        name: the model name in URLs (`/v1/models/<name>`).
        base_path: the directory holding integer version directories.
        all_versions: keep every version loaded (TF Serving's `all` policy) instead of only
            the highest (its default `latest` policy).
        labels: version labels, e.g. `{"stable": 1}` (TF Serving's `version_labels`).
        poll_seconds: how often `start()`'s thread looks for new versions.
    """

    def __init__(
        self,
        name: str,
        base_path: str | os.PathLike,
        *,
        all_versions: bool = False,
        labels: dict[str, int] | None = None,
        poll_seconds: float = 1.0,
    ):
        self.name = name
        self.base_path = pathlib.Path(base_path)
        self.all_versions = all_versions
        self.labels = dict(labels or {})
        self.poll_seconds = poll_seconds
        self._loaded: dict[int, LoadedVersion] = {}
        self._ended: set[int] = set()
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def refresh(self) -> None:
        """Loads new versions and unloads the ones the policy no longer wants."""
        with self._refresh_lock:
            on_disk = saved_model_versions(self.base_path)
            wanted = set(on_disk if self.all_versions else on_disk[-1:])
            for version in sorted(wanted - set(self._loaded)):
                try:
                    loaded = load_version(self.base_path / str(version), version)
                except Exception as error:  # a broken version must not stop the server
                    logging.error("could not load %s version %d: %s", self.name, version, error)
                    continue
                with self._lock:
                    self._loaded = {**self._loaded, version: loaded}
                    self._ended.discard(version)
                logging.info("loaded %s version %d", self.name, version)
            if wanted & set(self._loaded):
                gone = set(self._loaded) - wanted
                with self._lock:
                    self._loaded = {v: m for v, m in self._loaded.items() if v not in gone}
                    self._ended |= gone

    def start(self) -> "ModelRepository":
        """Loads what is on disk now, then polls for changes in a daemon thread.

        Raises:
            UnavailableLabelError: a label names a version that did not load (no thread is
                started; the loaded versions are dropped with the repository).
        """
        self.refresh()
        for label, version in sorted(self.labels.items()):
            if version not in self._loaded:
                raise UnavailableLabelError(
                    f"{label}={version}: cannot assign the label to version {version} of "
                    f"model {self.name}, which is not available for inference (loaded: "
                    f"{self.versions() or 'none'})"
                )
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll, name="version-poll", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as error:  # keep polling whatever the file system does
                logging.error("polling %s failed: %s", self.base_path, error)

    def versions(self) -> list[int]:
        """Loaded versions, ascending."""
        return sorted(self._loaded)

    def _version_for_label(self, label: str) -> int:
        if label not in self.labels:
            raise invalid_argument(f"Unrecognized servable version label: {clipped(label)}")
        return self.labels[label]

    def resolve(
        self, model_name: str, version: int | None = None, label: str | None = None
    ) -> LoadedVersion:
        """The loaded version a request asks for, or TF Serving's 404 / 400."""
        if version is not None and label is not None:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({clipped(label)}) "
                "cannot be supplied."
            )
        if model_name != self.name:
            shown = clipped(model_name)
            request = f"Latest({shown})" if version is None else f"Specific({shown}, {version})"
            raise not_found(f"Servable not found for request: {request}")
        if label is not None:
            version = self._version_for_label(label)
        loaded = self._loaded
        if version is None:
            if not loaded:
                raise not_found(f"Servable not found for request: Latest({model_name})")
            return loaded[max(loaded)]
        if version not in loaded:
            raise not_found(f"Servable not found for request: Specific({model_name}, {version})")
        return loaded[version]

    def status(self, model_name: str, version: int | None = None, label: str | None = None):
        """GetModelStatusResponse as JSON (what `GET /v1/models/<name>` returns)."""
        if version is not None and label is not None:
            self.resolve(model_name, version, label)  # raises the 400
        if label is not None:
            version = self._version_for_label(label)
        with self._lock:  # refresh() swaps _loaded and then _ended: read both at one moment
            loaded, ended = self._loaded, set(self._ended)
        states = {v: "AVAILABLE" for v in loaded} | {v: "END" for v in ended - set(loaded)}
        if model_name != self.name or not states:
            raise not_found(f"Could not find any versions of model {clipped(model_name)}")
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {model_name}")
            states = {version: states[version]}
        return {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": state,
                    "status": {"error_code": "OK", "error_message": ""},
                }
                for v, state in sorted(states.items(), reverse=True)
            ]
        }

    def metadata(self, model_name: str, version: int | None = None, label: str | None = None):
        """GetModelMetadataResponse as JSON (what `GET .../metadata` returns)."""
        loaded = self.resolve(model_name, version, label)
        signature_def = {
            name: json_format.MessageToDict(
                sig, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
            for name, sig in loaded.signature_defs.items()
        }
        return {
            "model_spec": {
                "name": self.name,
                "signature_name": "",
                "version": str(loaded.version),
            },
            "metadata": {"signature_def": {"signature_def": signature_def}},
        }
