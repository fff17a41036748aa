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

Bounds: every pickle's opcodes are scanned (`pickletools.genops`, linear time, memory linear
in the opcodes) before it is unpickled: nesting deeper than `MAX_NESTING` levels or more than
`MAX_PICKLE_OPCODES` opcodes is refused, so nothing later recurses deeply. Reading a file
allocates no tensor: a `StoredTensor` knows its name, shape and dtype, checked against its
storage's size, and allocates its values only when ``read()`` (the caller checks the shape
first, as ``ave_tf.convert`` does against the network's). A view reads only the part of its
storage it reaches; a zip's storage records must be stored uncompressed (as torch writes
them), so that part is never more bytes than the file holds. Module trees are walked at most
`MAX_MODULE_DEPTH` deep, without cycles, naming at most `MAX_STATE_DICT_ENTRIES` modules and
tensors, each name at most `MAX_NAME_CHARS` characters.
"""

import _compat_pickle
import collections
import dataclasses
import io
import itertools
import math
import os
import pathlib
import pickle
import pickletools
import reprlib
import struct
import sys
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from ave_tf.errors import UsageError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
MAX_NESTING = 256
"""Deepest nesting of containers a pickle may build (the released networks need about 20)."""
MAX_PICKLE_OPCODES = 1_000_000
"""Most opcodes in one pickle (a pickled PSP network has about 6,000)."""
MAX_ZIP_PICKLE_BYTES = 64 * 2**20
"""Largest ``data.pkl`` of a zip-format file, uncompressed."""
MAX_MODULE_DEPTH = 64
"""Deepest module tree walked (the released networks are 3 deep)."""
MAX_STATE_DICT_ENTRIES = 100_000
"""Most modules and tensors one module tree may name."""
MAX_NAME_CHARS = 1_000
"""Longest ``state_dict`` name a module tree may build."""

# torch storage type -> dtype of its bytes on disk.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # the upper 16 bits of a float32; see _Tensor._values
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


_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother = 3, 80, 80


def shown(value) -> str:
    """``repr(value)`` cut short (depth 3, strings of 80 characters): for untrusted values."""
    return _short.repr(value)


@dataclasses.dataclass(frozen=True)
class StoredTensor:
    """A tensor in a file, not yet read: name, shape and dtype come from the file's metadata.

    ``read()`` allocates ``prod(shape)`` elements of ``dtype`` (check the shape first) and
    raises `CheckpointError` naming the file and tensor where the bytes cannot be read.
    """

    path: pathlib.Path
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    reader: Callable[[], np.ndarray] = dataclasses.field(repr=False)

    def read(self) -> np.ndarray:
        """The values, a new C-contiguous, writeable array of ``shape`` and ``dtype``."""
        try:
            if math.prod(self.shape) * self.dtype.itemsize >= 2**63:
                raise MemoryError  # more than numpy can index
            return self.reader()
        except CheckpointError:
            raise
        except MemoryError:
            raise CheckpointError(
                f"{self.path}: tensor {shown(self.name)} of shape {self.shape} does not fit in "
                "memory"
            ) from None
        except Exception as error:  # whatever a damaged archive makes its reader raise
            raise CheckpointError(
                f"{self.path}: cannot read tensor {shown(self.name)} ({type(error).__name__}: "
                f"{shown(str(error))})"
            ) from error


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint holds.

    Attributes:
        tensors: ``state_dict`` name -> `StoredTensor` (the dtype saved; bfloat16 becomes
            float32), nothing read yet.
        serialization: ``"legacy"``, ``"zip"`` (or ``"npz"``, see ``ave_tf.convert``).
        contents: what was saved, e.g. ``"a pickled fully_model.psp_net module"``.
    """

    tensors: dict[str, StoredTensor]
    serialization: str
    contents: str

    def arrays(self) -> dict[str, np.ndarray]:
        """Every tensor read: as much memory as the shapes say (check them first)."""
        return {name: tensor.read() for name, tensor in self.tensors.items()}


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
    """One saved storage: ``numel`` elements of ``storage_type``; its bytes are attached by the
    reader (legacy: a slice of the file in memory; zip: a stored record, read on demand)."""

    def __init__(self, key: str, storage_type: _StorageType, numel: int):
        self.key, self.storage_type, self.numel = key, storage_type, numel
        self.data: np.ndarray | None = None
        self.record: tuple[pathlib.Path, str] | None = None

    @property
    def nbytes(self) -> int:
        return self.numel * self.storage_type.dtype.itemsize

    def attach(self, buffer, path) -> None:
        """Legacy format: ``buffer`` (the file's bytes from this storage on) holds it."""
        if len(buffer) < self.nbytes:
            raise CheckpointError(
                f"{path}: truncated: storage {self.key!r} needs {self.nbytes} bytes, "
                f"{len(buffer)} are left"
            )
        self.data = np.frombuffer(buffer, self.storage_type.dtype, count=self.numel)

    def attach_record(self, archive: zipfile.ZipFile, name: str, path) -> None:
        """Zip format: the record ``name`` of ``archive`` holds it; checked, not read."""
        info = archive.getinfo(name)  # KeyError: no such record
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"{path}: storage record {name!r} is compressed; torch stores them uncompressed"
            )
        if info.file_size < self.nbytes:
            raise CheckpointError(
                f"{path}: truncated: storage {self.key!r} needs {self.nbytes} bytes, its record "
                f"holds {info.file_size}"
            )
        self.record = (pathlib.Path(path), name)

    def elements(self, first: int, count: int) -> np.ndarray:
        """Elements ``first`` to ``first + count - 1``, as stored (read-only)."""
        if self.data is not None:
            return self.data[first : first + count]
        if self.record is None:
            raise CheckpointError(f"storage {self.key!r} has no bytes")
        path, name = self.record
        itemsize = self.storage_type.dtype.itemsize
        with zipfile.ZipFile(path) as archive, archive.open(name) as record:
            record.seek(first * itemsize)
            data = record.read(count * itemsize)
        if len(data) != count * itemsize:
            raise CheckpointError(f"{path}: truncated: storage record {name!r} ends early")
        return np.frombuffer(data, self.storage_type.dtype)


@dataclasses.dataclass(frozen=True)
class _Tensor(_Sealed):
    """A tensor as pickled: a view (offset, size, stride, in elements) of a storage."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    @property
    def _reach(self) -> int:
        """How many elements past its first the view's last element lies (size has no 0)."""
        return sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))

    def stored(self, name: str, path) -> StoredTensor:
        """The view, checked to lie inside its storage, as a `StoredTensor` not yet read."""
        layout = (self.offset, *self.size, *self.stride)
        if (
            len(self.size) != len(self.stride)
            or len(self.size) > 64  # numpy's most dimensions
            or not all(type(n) is int and n >= 0 for n in layout)
        ):
            raise CheckpointError(
                f"{path}: tensor {shown(name)} has an invalid layout: offset "
                f"{shown(self.offset)}, size {shown(self.size)}, stride {shown(self.stride)}"
            )
        if 0 not in self.size:
            last = self.offset + self._reach
            if last >= self.storage.numel:
                raise CheckpointError(
                    f"{path}: tensor {shown(name)} (offset {self.offset}, size {self.size}, "
                    f"stride {self.stride}) reaches element {last} of a storage of "
                    f"{self.storage.numel}"
                )
        return StoredTensor(pathlib.Path(path), name, self.size, self.dtype, self._values)

    @property
    def dtype(self) -> np.dtype:
        """The dtype read: the storage's, float32 for bfloat16."""
        if self.storage.storage_type.name == "BFloat16Storage":
            return np.dtype(np.float32)
        return self.storage.storage_type.dtype

    def _values(self) -> np.ndarray:
        """A new C-contiguous array; reads only the storage elements the view reaches."""
        if 0 in self.size:
            return np.zeros(self.size, self.dtype)
        elements = self.storage.elements(self.offset, 1 + self._reach)
        view = np.lib.stride_tricks.as_strided(
            elements,
            self.size,
            tuple(s * elements.itemsize for s in self.stride),
            writeable=False,
        )
        values = np.array(view, order="C")
        if self.storage.storage_type.name == "BFloat16Storage":
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values


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
                f"refusing to call {cls.qualified_name} with arguments {shown(args)}: only "
                "tensors and module objects are rebuilt"
            )
        return super().__new__(cls)

    def __setstate__(self, state):
        if isinstance(state, dict):
            for name in state:
                if not isinstance(name, str) or name.startswith("__"):
                    raise UnsafeCheckpointError(
                        f"refusing to load: the pickle sets attribute {shown(name)} of a "
                        f"{self.qualified_name}"
                    )
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
            if (
                isinstance(storage_type, _StorageType)
                and type(numel) is int
                and numel >= 0
                and isinstance(key, str)
            ):
                if key not in self._storages:
                    self._storages[key] = _Storage(key, storage_type, numel)
                    if self._attach is not None:
                        self._attach(self._storages[key])
                return self._storages[key]
        raise pickle.UnpicklingError(f"unknown persistent id {shown(pid)}")


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads what a ``torch.save`` file (legacy or zip) holds, without reading any tensor's
    values; see the module docstring.

    Raises:
        UnsafeCheckpointError: the file names something other than tensors and modules.
        CheckpointError: the file is missing, empty, truncated, not a PyTorch checkpoint, holds
            neither a state_dict nor a module, or is beyond a bound. Every message starts with
            the path.
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
        tensors, contents = _state_dict(root, path)
    except UnsafeCheckpointError as error:  # raised inside the unpickler, which has no path
        raise UnsafeCheckpointError(f"{path}: {error}") from None
    except CheckpointError:
        raise
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({error.strerror or error})") from error
    except Exception as error:  # whatever a damaged pickle or archive makes the readers raise
        raise CheckpointError(
            f"{path}: damaged or truncated PyTorch checkpoint ({type(error).__name__}: "
            f"{shown(str(error))})"
        ) from error
    stored = {name: tensor.stored(name, path) for name, tensor in tensors.items()}
    return Checkpoint(stored, serialization, contents)


_MEMO_WRITES = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_READS = {"GET", "BINGET", "LONG_BINGET"}
# Opcodes that add to the container below their operands instead of pushing a new object.
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}


def _check_pickle(stream: io.BytesIO, path) -> None:
    """Scans the pickle at ``stream``'s position and refuses one that nests containers deeper
    than `MAX_NESTING` or has more than `MAX_PICKLE_OPCODES` opcodes; leaves the position.

    Follows the unpickler's stack with each object's nesting depth (an atom 1, a container one
    more than its deepest item), without building anything: linear time, memory linear in
    the opcodes.
    """
    start = stream.tell()
    depths: list[int] = []  # the unpickler's stack, as nesting depths
    marks: list[int] = []  # len(depths) at each MARK
    memo: dict[int, int] = {}
    for count, (opcode, argument, position) in enumerate(pickletools.genops(stream), 1):
        if count > MAX_PICKLE_OPCODES:
            raise CheckpointError(
                f"{path}: a pickle of more than {MAX_PICKLE_OPCODES:,} opcodes: refused"
            )
        name, before = opcode.name, opcode.stack_before
        try:
            if name == "MARK":
                marks.append(len(depths))
            elif name in _MEMO_WRITES:
                memo[len(memo) if name == "MEMOIZE" else argument] = depths[-1]
            elif name == "DUP":
                depths.append(depths[-1])
            elif name == "POP" and len(depths) == (marks[-1] if marks else 0):
                marks.pop()  # the unpickler's POP of an empty frame drops the mark
            elif name == "POP_MARK":
                del depths[marks.pop() :]
            else:
                if pickletools.markobject in before:
                    mark = marks.pop()
                    items = depths[mark:]
                    del depths[mark:]
                else:
                    items = [depths.pop() for _ in range(len(before) - (name in _MUTATORS))]
                deepest = 1 + max(items, default=0)
                if name in _MUTATORS:
                    depths[-1] = max(depths[-1], deepest)
                elif opcode.stack_after:
                    depths.append(memo.get(argument, 1) if name in _MEMO_READS else deepest)
        except IndexError:
            raise CheckpointError(
                f"{path}: damaged pickle: {name} at byte {position} finds too few objects"
            ) from None
        if depths and depths[-1] > MAX_NESTING:
            raise CheckpointError(
                f"{path}: the pickle nests containers more than {MAX_NESTING} deep (at byte "
                f"{position}): refused"
            )
    stream.seek(start)


def _load_legacy(path: pathlib.Path) -> Any:
    stream = io.BytesIO(path.read_bytes())
    storages: dict[str, _Storage] = {}
    module_classes: dict = {}

    def load():
        _check_pickle(stream, path)
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
    if (
        not isinstance(keys, list)
        or not all(isinstance(key, str) for key in keys)
        or set(keys) != set(storages)
    ):
        raise CheckpointError(f"{path}: the storage list does not match the tensors' storages")
    buffer = stream.getbuffer()
    position = stream.tell()
    for key in keys:
        (numel,) = struct.unpack_from("<q", buffer, position)
        position += 8
        storage = storages[key]
        if numel != storage.numel:
            raise CheckpointError(
                f"{path}: storage {shown(key)} holds {numel} elements, the tensors expect "
                f"{storage.numel}"
            )
        storage.attach(buffer[position : position + storage.nbytes], path)
        position += storage.nbytes
    return root


def _load_zip(path: pathlib.Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("data.pkl")]
        pickles = [name for name in pickles if name.count("/") == 1 or name == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError(
                f"{path}: a zip archive without one <root>/data.pkl: not a PyTorch checkpoint"
            )
        root = pickles[0][: -len("data.pkl")]
        if f"{root}byteorder" in names:
            with archive.open(f"{root}byteorder") as record:
                if record.read(16) != b"little":
                    raise CheckpointError(f"{path}: written on a big-endian machine: not supported")
        with archive.open(pickles[0]) as record:
            pickled = record.read(MAX_ZIP_PICKLE_BYTES + 1)
        if len(pickled) > MAX_ZIP_PICKLE_BYTES:
            raise CheckpointError(
                f"{path}: {pickles[0]} is larger than {MAX_ZIP_PICKLE_BYTES:,} bytes: refused"
            )

        def attach(storage: _Storage):
            storage.attach_record(archive, f"{root}data/{storage.key}", path)

        stream = io.BytesIO(pickled)
        _check_pickle(stream, path)
        return _RestrictedUnpickler(stream, {}, {}, attach).load()


def _state_dict(root, path) -> tuple[dict[str, _Tensor], str]:
    """The saved object's tensors by ``state_dict`` name, and a description of the object."""
    if isinstance(root, _ModuleObject):
        tree = _ModuleTree(path)
        tree.collect(root)
        return tree.tensors, f"a pickled {root.qualified_name} module"
    if isinstance(root, dict) and all(isinstance(value, _Tensor) for value in root.values()):
        for key in root:
            if not isinstance(key, str):
                raise CheckpointError(
                    f"{path}: a state_dict key is not a string but a {type(key).__name__}"
                )
        return dict(root), "a state_dict"
    if isinstance(root, dict):
        keys = shown(list(itertools.islice(root, 10)))
        raise CheckpointError(
            f"{path}: holds a dict whose values are not all tensors (keys {keys}); expected a "
            "state_dict or a pickled module"
        )
    raise CheckpointError(
        f"{path}: holds a {type(root).__name__}; expected a state_dict or a pickled module"
    )


class _ModuleTree:
    """``nn.Module.state_dict`` over the pickled attributes of a module stand-in and those
    below it: parameters, persistent buffers, then the sub-modules' in order, names joined
    with dots. Refuses a module inside itself, and trees beyond the module docstring's bounds.
    """

    def __init__(self, path):
        self.path = path
        self.tensors: dict[str, _Tensor] = {}
        self.entries = 0  # modules visited and tensors named

    def collect(self, module: _ModuleObject, prefix: str = "", ancestors=frozenset()) -> None:
        path, where = self.path, shown(prefix or "the top")
        if id(module) in ancestors:
            raise CheckpointError(f"{path}: the module at {where} contains itself")
        if len(ancestors) >= MAX_MODULE_DEPTH:
            raise CheckpointError(f"{path}: modules nested more than {MAX_MODULE_DEPTH} deep")
        fields = {}
        for field in ("_parameters", "_buffers", "_modules"):
            value = module.__dict__.get(field)
            if not isinstance(value, dict) or not all(isinstance(name, str) for name in value):
                raise CheckpointError(
                    f"{path}: {module.qualified_name} at {where} has no {field} dict of names: "
                    "not a pickled nn.Module"
                )
            if any(len(prefix) + len(name) > MAX_NAME_CHARS for name in value):
                raise CheckpointError(
                    f"{path}: a name at {where} is longer than {MAX_NAME_CHARS} characters"
                )
            fields[field] = value
        transient = module.__dict__.get("_non_persistent_buffers_set", set())
        if not isinstance(transient, (set, frozenset)):
            raise CheckpointError(f"{path}: {module.qualified_name} at {where}: odd buffer set")
        self.entries += 1 + sum(map(len, fields.values()))
        if self.entries > MAX_STATE_DICT_ENTRIES:
            raise CheckpointError(
                f"{path}: more than {MAX_STATE_DICT_ENTRIES:,} modules and tensors: refused"
            )
        for field in ("_parameters", "_buffers"):
            for name, tensor in fields[field].items():
                if tensor is None or (field == "_buffers" and name in transient):
                    continue
                if not isinstance(tensor, _Tensor):
                    raise CheckpointError(f"{path}: {shown(prefix + name)} is not a tensor")
                self.tensors[prefix + name] = tensor
        for name, child in fields["_modules"].items():
            if child is None:
                continue
            if not isinstance(child, _ModuleObject):
                raise CheckpointError(f"{path}: {shown(prefix + name)} is not a module")
            self.collect(child, f"{prefix}{name}.", ancestors | {id(module)})
