"""Hand-assembled pickle opcodes and hostile checkpoint files (no torch), for the tests of
``ave_tf.torch_checkpoint`` and ``ave_tf.convert``.

The helpers write protocol-2 opcodes directly, so a test can build what no pickler writes: a
tensor whose size and stride reach far beyond its storage, a module that contains itself, a
tuple nested a million deep. ``HOSTILE_FILES`` maps a name to a writer ``write(path) -> path``
of each file the conversion must refuse with one ``error:`` line, bounded in memory.
"""

import pathlib
import struct
import zipfile

import numpy as np

PROTO_2 = b"\x80\x02"
MARK, TUPLE, EMPTY_DICT, SETITEMS, SETITEM, REDUCE, BUILD, STOP = (bytes([c]) for c in b"(t}usRb.")
EMPTY_TUPLE, NEWOBJ, BINPERSID, NEWFALSE = (bytes([c]) for c in b")\x81Q\x89")


def text(value: str) -> bytes:
    """BINUNICODE ``value``."""
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    """BININT for a 32-bit ``value``, else LONG1."""
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def global_name(module: str, name: str) -> bytes:
    """GLOBAL ``module.name``."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tuple_of(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def ints(values) -> bytes:
    return tuple_of(*(integer(value) for value in values))


def storage(key: str, numel: int, storage_type: str = "FloatStorage") -> bytes:
    """A storage of ``numel`` elements (zip-format persistent id, BINPERSID)."""
    pid = (text("storage"), global_name("torch", storage_type), text(key), text("cpu"))
    return tuple_of(*pid, integer(numel)) + BINPERSID


def tensor(storage_ops: bytes, size, stride, offset: int = 0) -> bytes:
    """``_rebuild_tensor_v2(storage, offset, size, stride, False)``."""
    arguments = tuple_of(storage_ops, integer(offset), ints(size), ints(stride), NEWFALSE)
    return global_name("torch._utils", "_rebuild_tensor_v2") + arguments + REDUCE


def state_dict(entries: dict[str, bytes]) -> bytes:
    """A protocol-2 pickle of ``{key: value ops}``."""
    items = b"".join(text(key) + value for key, value in entries.items())
    return PROTO_2 + EMPTY_DICT + MARK + items + SETITEMS + STOP


def zip_checkpoint(path, pickled: bytes, storages: dict[str, bytes] = None, compress=False):
    """``pickled`` as ``archive/data.pkl`` and each storage's bytes as ``archive/data/<key>``."""
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return pathlib.Path(path)


def zip_state_dict_file(path, **tensors_by_name) -> pathlib.Path:
    """A zip-format state dict of float32 tensors ``name=(numel, size, stride)``, each over
    its own storage of ``numel`` ones."""
    entries, storages = {}, {}
    for index, (name, (numel, size, stride)) in enumerate(tensors_by_name.items()):
        entries[name] = tensor(storage(str(index), numel), size, stride)
        storages[str(index)] = np.ones(numel, np.float32).tobytes()
    return zip_checkpoint(path, state_dict(entries), storages)


def self_containing_module(path) -> pathlib.Path:
    """A module stand-in whose ``_modules`` holds itself (memo 0), zip format."""
    module = global_name("fully_model", "psp_net") + EMPTY_TUPLE + NEWOBJ + b"q\x00"  # BINPUT 0
    fields = text("_parameters") + EMPTY_DICT + text("_buffers") + EMPTY_DICT
    children = EMPTY_DICT + text("self") + b"h\x00" + SETITEM  # BINGET 0
    state = EMPTY_DICT + MARK + fields + text("_modules") + children + SETITEMS
    return zip_checkpoint(path, PROTO_2 + module + state + BUILD + STOP)


def deep_tuple_key(path, depth: int = 1_000_000) -> pathlib.Path:
    """``{((...(None,)...),): None}``: the 1 MB pickle of issue 20 item 10, as a raw file."""
    path = pathlib.Path(path)
    path.write_bytes(PROTO_2 + EMPTY_DICT + b"N" + b"\x85" * depth + b"Ns" + STOP)
    return path


def empty_dicts(path, count: int = 999_980) -> pathlib.Path:
    """A list of ``count`` empty dicts: one byte of pickle each (the opcode bound's worst)."""
    path = pathlib.Path(path)
    path.write_bytes(PROTO_2 + b"](" + EMPTY_DICT * count + b"e" + STOP)  # APPENDS
    return path


def dunder_build(path) -> pathlib.Path:
    """A module stand-in given ``__class__`` by BUILD, zip format."""
    module = global_name("fully_model", "psp_net") + EMPTY_TUPLE + NEWOBJ
    state = EMPTY_DICT + text("__class__") + global_name("collections", "OrderedDict") + SETITEM
    return zip_checkpoint(path, PROTO_2 + module + state + BUILD + STOP)


def npz_bomb(path, elements: int = 2**28) -> pathlib.Path:
    """A deflated ``.npz`` whose one member is ``elements`` float32 zeros (~1 MB for 2^28)."""
    path = pathlib.Path(path)
    header = {"descr": "<f4", "fortran_order": False, "shape": (elements,)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("weight.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            zeros = bytes(2**20)
            for _ in range(elements * 4 // len(zeros)):
                member.write(zeros)
    return path


def random_zip(path, size: int = 4096, seed: int = 0) -> pathlib.Path:
    """``PK\\x03\\x04`` and random bytes."""
    path = pathlib.Path(path)
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(seed).bytes(size))
    return path


STRIDE_0 = 2**28  # elements of one stride-0 tensor: 1 GiB as float32
HOSTILE_FILES = {
    # issue 20 item 10: a tuple key nested 10^6 deep.
    "deep_tuple_key.pt": deep_tuple_key,
    # item 11: 2^28 elements over a 1-element storage; three of them; a 1 MB deflated npz.
    "stride0_unknown_key.pt": lambda path: zip_state_dict_file(path, weight=(1, (STRIDE_0,), (0,))),
    "stride0_three_keys.pt": lambda path: zip_state_dict_file(
        path, **{name: (1, (STRIDE_0,), (0,)) for name in ("a", "b", "c")}
    ),
    "stride0_expected_key_wrong_shape.pt": lambda path: zip_state_dict_file(
        path, **{"L2.weight": (1, (STRIDE_0, 64), (0, 0))}
    ),
    "deflate_bomb.npz": npz_bomb,
    "million_empty_dicts.pt": empty_dicts,  # Python objects: ~64 bytes per byte of pickle
    # item 12.
    "self_containing_module.pt": self_containing_module,
    "stride0_2e31_squared.pt": lambda path: zip_state_dict_file(
        path, weight=(1, (2**31, 2**31), (0, 0))
    ),
    "random_after_zip_magic.pt": random_zip,
    "random_after_zip_magic.npz": random_zip,
    "dunder_build.pt": dunder_build,
}
