"""Reads the tensors of a PyTorch checkpoint (``torch.save`` file) as NumPy arrays, without
torch, without the code of the classes it names, and without running anything it asks for.

Formats (both as ``torch.load`` reads them):

- legacy, PyTorch <= 1.5 (and later ones with ``_use_new_zipfile_serialization=False``): five
  pickles in a row (the magic number, protocol version 1001, a dict of system facts, the saved
  object, the list of storage keys), then every storage in that order as an int64 element
  count and its raw little-endian bytes;
- zip, PyTorch >= 1.6: ``<root>/data.pkl`` (the object), ``<root>/data/<key>`` (each storage's
  raw bytes) and ``<root>/byteorder``.

Saved objects: a ``state_dict`` (a dict of tensors, e.g. ``torch.save(model.state_dict())``) or
a whole pickled ``nn.Module`` (``torch.save(model)``), whose tensors live in the ``_parameters``
and ``_buffers`` of nested module objects (``_modules``); ``state_dict`` names them as torch does
(``psp.v_L1.weight``).

Security: the pickles are read by `_RestrictedUnpickler`, whose ``find_class`` resolves only
``collections.OrderedDict``, ``builtins.set``, torch's tensor/parameter rebuild functions and
storage types (reimplemented here with NumPy; every view is checked against its storage's
bytes). Module classes (``torch.nn.modules.*``, what old PyTorch pickled with them such as
``torch.nn.backends.thnn``, and classes of any non-standard-library module: the model's own code,
e.g. ``fully_model.psp_net``) become inert attribute holders: no ``__init__``, ``__setstate__``
or ``__reduce__`` of theirs exists here to run, and calling one with arguments is refused. Any
other name (``os.system``, ``builtins.eval``, ``subprocess.Popen``, other ``torch`` functions)
stops the read with `UnsafeCheckpointError` naming it, before anything is called.
"""

import _compat_pickle
import collections
import dataclasses
import io
import os
import pathlib
import pickle
import struct
import sys
import zipfile
from typing import Any

import numpy as np

from ave_tf.errors import UsageError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch storage type -> dtype of its bytes on disk.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # the upper 16 bits of a float32; see _Storage.values
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
# Packages whose names are never module classes of a model: refused unless listed above.
_NEVER_MODULE_CLASSES = set(sys.stdlib_module_names) | {"torch"}
# Parts of torch whose names a pickled network holds: module classes, and what old PyTorch
# pickled with them (every module's ``_backend``, <= 1.2; cuDNN RNNs' ``Unserializable``).
_TORCH_MODULE_PACKAGES = (
    "torch.nn.modules.",
    "torch.nn.parallel.",
    "torch.nn.backends.",
    "torch.backends.cudnn.rnn.",
)


class CheckpointError(UsageError):
    """The file is not a PyTorch checkpoint this reader understands; names the file."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint asks to run something other than rebuilding tensors and modules."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint holds.

    Attributes:
        tensors: ``state_dict`` name -> array (the dtype saved; bfloat16 becomes float32).
        serialization: ``"legacy"`` or ``"zip"``.
        contents: what was saved, e.g. ``"a pickled fully_model.psp_net module"``.
    """

    tensors: dict[str, np.ndarray]
    serialization: str
    contents: str


class _Sealed:
    """Base of the reader's own objects: a pickle cannot change their attributes (BUILD)."""

    def __setstate__(self, state):
        raise UnsafeCheckpointError(
            f"refusing to load: the pickle tries to set the attributes of a {type(self).__name__}"
        )


@dataclasses.dataclass(frozen=True)
class _StorageType(_Sealed):
    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


class _Storage(_Sealed):
    """One saved storage: ``numel`` elements of ``storage_type``; bytes attached by the reader."""

    def __init__(self, key: str, storage_type: _StorageType, numel: int):
        self.key, self.storage_type, self.numel = key, storage_type, numel
        self.data: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return self.numel * self.storage_type.dtype.itemsize

    def attach(self, buffer, path) -> None:
        if len(buffer) < self.nbytes:
            raise CheckpointError(
                f"{path}: truncated: storage {self.key!r} needs {self.nbytes} bytes, "
                f"{len(buffer)} are left"
            )
        self.data = np.frombuffer(buffer, self.storage_type.dtype, count=self.numel)

    def values(self) -> np.ndarray:
        if self.storage_type.name == "BFloat16Storage":
            return (self.data.astype(np.uint32) << 16).view(np.float32)
        return self.data


@dataclasses.dataclass(frozen=True)
class _Tensor(_Sealed):
    """A tensor as pickled: a view (offset, size, stride, in elements) of a storage."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def to_numpy(self, name: str, path) -> np.ndarray:
        """A new C-contiguous array; the view is checked to lie inside the storage."""
        layout = (self.offset, *self.size, *self.stride)
        if len(self.size) != len(self.stride) or not all(
            isinstance(n, int) and n >= 0 for n in layout
        ):
            raise CheckpointError(
                f"{path}: tensor {name!r} has an invalid layout: offset {self.offset}, "
                f"size {self.size}, stride {self.stride}"
            )
        values = self.storage.values()
        if not isinstance(values, np.ndarray):
            raise CheckpointError(f"{path}: tensor {name!r} has no storage bytes")
        if 0 in self.size:
            return np.zeros(self.size, values.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if last >= values.size:
            raise CheckpointError(
                f"{path}: tensor {name!r} (offset {self.offset}, size {self.size}, stride "
                f"{self.stride}) reaches element {last} of a storage of {values.size}"
            )
        view = np.lib.stride_tricks.as_strided(
            values[self.offset :],
            self.size,
            tuple(s * values.itemsize for s in self.stride),
            writeable=False,
        )
        try:
            return np.array(view, order="C")
        except MemoryError:  # e.g. a huge size over stride 0
            raise CheckpointError(
                f"{path}: tensor {name!r} of size {self.size} does not fit in memory"
            ) from None


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, *_hooks):
    """``torch._utils._rebuild_tensor_v2``: (storage, offset, size, stride, ...)."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor's storage is a {type(storage).__name__}")
    return _Tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=True, *_hooks_and_state):
    """``torch._utils._rebuild_parameter(_with_state)``: a Parameter is its tensor."""
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError(f"a parameter holds a {type(data).__name__}")
    return data


_CALLABLES = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _ModuleObject:
    """Base of the inert stand-ins for module classes: holds the pickled attributes, runs
    nothing. ``qualified_name`` is the class the file named."""

    qualified_name = "?"

    def __new__(cls, *args, **kwargs):
        if args or kwargs:
            raise UnsafeCheckpointError(
                f"refusing to call {cls.qualified_name} with arguments {args!r}: only tensors "
                "and module objects are rebuilt"
            )
        return super().__new__(cls)

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["pickled_state"] = state


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles tensors, storages, dicts and module objects; refuses every other name.

    Args:
        file: the pickle stream.
        storages: key -> `_Storage` of the file, filled as the pickle refers to them.
        module_classes: qualified name -> stand-in class, shared by the pickles of one file.
        attach: ``attach(storage)`` gives a new storage its bytes, where they precede the
            end of the pickle (zip format); None where they follow it (legacy format).
    """

    def __init__(self, file, storages: dict, module_classes: dict, attach=None):
        super().__init__(file)
        self._storages = storages
        self._module_classes = module_classes
        self._attach = attach

    def find_class(self, module: str, name: str):
        # Python 2 names, which protocol 2 pickles use (``__builtin__``, ``commands``).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        qualified = f"{module}.{name}"
        if (module, name) in _CALLABLES:
            return _CALLABLES[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if self._is_module_class(module, name):
            if qualified not in self._module_classes:
                self._module_classes[qualified] = type(
                    name, (_ModuleObject,), {"qualified_name": qualified, "__module__": module}
                )
            return self._module_classes[qualified]
        raise UnsafeCheckpointError(
            f"refusing to load: the pickle asks for {qualified}, which is not a tensor, storage "
            "or module class (nothing was run)"
        )

    @staticmethod
    def _is_module_class(module: str, name: str) -> bool:
        if not (name.isidentifier() and all(part.isidentifier() for part in module.split("."))):
            return False
        if f"{module}.".startswith(_TORCH_MODULE_PACKAGES):
            return True
        return module.split(".")[0] not in _NEVER_MODULE_CLASSES

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and pid and pid[0] == "module":  # legacy: (.., class, source)
            if len(pid) == 4 and isinstance(pid[1], type) and issubclass(pid[1], _ModuleObject):
                return pid[1]
        elif isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage":
            storage_type, key, _location, numel = pid[1:5]
            view = pid[5] if len(pid) == 6 else None
            if view is not None:
                raise pickle.UnpicklingError("storage views (PyTorch < 0.4) are not supported")
            if isinstance(storage_type, _StorageType) and isinstance(numel, int) and numel >= 0:
                key = str(key)
                if key not in self._storages:
                    self._storages[key] = _Storage(key, storage_type, numel)
                    if self._attach is not None:
                        self._attach(self._storages[key])
                return self._storages[key]
        raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:200]}")


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads a ``torch.save`` file (legacy or zip) into NumPy arrays; see the module docstring.

    Raises:
        UnsafeCheckpointError: the file names something other than tensors and modules.
        CheckpointError: the file is missing, empty, truncated, not a PyTorch checkpoint, or
            holds neither a state_dict nor a module. Every message starts with the path.
    """
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as file:
            head = file.read(4)
        if not head:
            raise CheckpointError(f"{path}: empty file, not a PyTorch checkpoint")
        if head.startswith(b"PK"):
            root, serialization = _load_zip(path), "zip"
        elif head[:1] == b"\x80" and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL:
            root, serialization = _load_legacy(path), "legacy"
        else:
            raise CheckpointError(
                f"{path}: not a PyTorch checkpoint (starts with {head!r}; expected a zip "
                "archive or the pickles of torch.save)"
            )
    except UnsafeCheckpointError as error:  # raised inside the unpickler, which has no path
        raise UnsafeCheckpointError(f"{path}: {error}") from None
    except CheckpointError:
        raise
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({error.strerror or error})") from error
    except Exception as error:  # whatever a damaged pickle or archive makes the readers raise
        raise CheckpointError(
            f"{path}: damaged or truncated PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from error
    tensors, contents = _state_dict(root, path)
    arrays = {name: tensor.to_numpy(name, path) for name, tensor in tensors.items()}
    return Checkpoint(arrays, serialization, contents)


def _load_legacy(path: pathlib.Path) -> Any:
    stream = io.BytesIO(path.read_bytes())
    storages: dict[str, _Storage] = {}
    module_classes: dict = {}

    def load():
        return _RestrictedUnpickler(stream, storages, module_classes).load()

    if load() != LEGACY_MAGIC_NUMBER:
        raise CheckpointError(f"{path}: a pickle, but not a PyTorch checkpoint (no magic number)")
    if load() != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(f"{path}: unsupported PyTorch legacy protocol version")
    system = load()
    if not isinstance(system, dict) or not system.get("little_endian", False):
        raise CheckpointError(f"{path}: written on a big-endian machine: not supported")
    root = load()
    keys = load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise CheckpointError(f"{path}: the storage list does not match the tensors' storages")
    buffer = stream.getbuffer()
    position = stream.tell()
    for key in keys:
        (numel,) = struct.unpack_from("<q", buffer, position)
        position += 8
        storage = storages[str(key)]
        if numel != storage.numel:
            raise CheckpointError(
                f"{path}: storage {key!r} holds {numel} elements, the tensors expect "
                f"{storage.numel}"
            )
        storage.attach(buffer[position : position + storage.nbytes], path)
        position += storage.nbytes
    return root


def _load_zip(path: pathlib.Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        pickles = [name for name in pickles if name.count("/") == 1 or name == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError(
                f"{path}: a zip archive without one <root>/data.pkl: not a PyTorch checkpoint"
            )
        root = pickles[0][: -len("data.pkl")]
        if f"{root}byteorder" in archive.namelist():
            if archive.read(f"{root}byteorder") != b"little":
                raise CheckpointError(f"{path}: written on a big-endian machine: not supported")

        def attach(storage: _Storage):
            with archive.open(f"{root}data/{storage.key}") as record:
                storage.attach(record.read(storage.nbytes), path)

        with archive.open(pickles[0]) as file:
            return _RestrictedUnpickler(file, {}, {}, attach).load()


def _state_dict(root, path) -> tuple[dict[str, _Tensor], str]:
    """The saved object's tensors by ``state_dict`` name, and a description of the object."""
    if isinstance(root, _ModuleObject):
        tensors: dict[str, _Tensor] = {}
        _collect_module(root, "", tensors, path)
        return tensors, f"a pickled {root.qualified_name} module"
    if isinstance(root, dict) and all(isinstance(value, _Tensor) for value in root.values()):
        return {str(key): value for key, value in root.items()}, "a state_dict"
    if isinstance(root, dict):
        keys = [str(key) for key in root][:10]
        raise CheckpointError(
            f"{path}: holds a dict whose values are not all tensors (keys {keys}); expected a "
            "state_dict or a pickled module"
        )
    raise CheckpointError(
        f"{path}: holds a {type(root).__name__}; expected a state_dict or a pickled module"
    )


def _collect_module(module: _ModuleObject, prefix: str, tensors: dict, path) -> None:
    """``nn.Module.state_dict`` over the pickled attributes: parameters, persistent buffers,
    then the sub-modules' in order, names joined with dots."""
    fields = {}
    for field in ("_parameters", "_buffers", "_modules"):
        value = module.__dict__.get(field)
        if not isinstance(value, dict):
            raise CheckpointError(
                f"{path}: {module.qualified_name} at {prefix or 'the top'!r} has no {field} "
                "dict: not a pickled nn.Module"
            )
        fields[field] = value
    transient = module.__dict__.get("_non_persistent_buffers_set", set())
    for field in ("_parameters", "_buffers"):
        for name, tensor in fields[field].items():
            if tensor is None or (field == "_buffers" and name in transient):
                continue
            if not isinstance(tensor, _Tensor):
                raise CheckpointError(f"{path}: {prefix}{name} is not a tensor")
            tensors[f"{prefix}{name}"] = tensor
    for name, child in fields["_modules"].items():
        if child is None:
            continue
        if not isinstance(child, _ModuleObject):
            raise CheckpointError(f"{path}: {prefix}{name} is not a module")
        _collect_module(child, f"{prefix}{name}.", tensors, path)
