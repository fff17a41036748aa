"""PyTorch checkpoints shaped like the authors' ``PSP_fully.pt`` / ``PSP_weakly.pt``, and what
they hold, for testing ``ave_tf.torch_checkpoint`` and ``ave_tf.convert`` without torch.

The committed files in ``tests/torch_checkpoints/`` were written by torch (2.13, CPU) with
this module::

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch numpy  # a CPU wheel is enough
    /tmp/torchvenv/bin/python -m tests.torch_checkpoint_fixtures tests/torch_checkpoints

Each PSP file holds every key of the official ``state_dict`` (``tests/official_weights.py``)
with its real shape, saved as

- ``module``: the whole network pickled (``torch.save(net_model, ...)``, as the authors did),
  its classes named as in their code (``fully_model.psp_net`` with ``AVGA``, ``LSTM_A_V``,
  ``PSP``, ``Classify``, ``AVSimilarity`` children; ``weakly_model.psp_net``), the torch ones
  real (``nn.Linear``, ``nn.LSTM``, ``nn.LayerNorm``, ``nn.Sequential``, ...), and every module
  carrying the ``_backend`` that PyTorch <= 1.2 pickled with it;
- ``state_dict``: ``torch.save(net_model.state_dict(), ...)``; the weakly one with the
  ``module.`` prefix that ``nn.DataParallel`` adds;

in the legacy format (``_use_new_zipfile_serialization=False``, what PyTorch 1.2 wrote) and the
zip format. To keep the files small (the real weights are ~7 MB per network), every tensor of
the committed files is a strided view of one shared storage per network (``strided_layout``):
a matrix ``W`` (out, in) is ``storage[offset + 2 i + j]``, so the files also test storage
offsets, strides and shared storages. ``layout="contiguous"`` writes ordinary tensors with the
values of ``official_weights.random_state_dict`` (as the authors' files have them).
``tensor_kinds_*.pt`` hold one small tensor of every dtype and view kind (``TENSOR_KINDS``).

``legacy_file`` / ``zip_file`` frame any object in either layout with the standard ``pickle``
module (no torch), to write hostile files.
"""

import collections
import pathlib
import pickle
import sys
import types
import warnings
import zipfile

import numpy as np

from ave_tf.torch_checkpoint import LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION
from tests import official_weights as weights

SETTINGS = ("fully", "weakly")
CONTAINERS = ("module", "state_dict")
SERIALIZATIONS = ("legacy", "zip")
ALL_FILES = tuple(
    (setting, container, serialization)
    for serialization in SERIALIZATIONS
    for setting in SETTINGS
    for container in CONTAINERS
)
# (setting, container, serialization) of the committed files: every legacy one (the authors'
# format) and one of each container in the zip format (~120-170 KB each).
COMMITTED_FILES = tuple(
    (setting, container, serialization)
    for setting, container, serialization in ALL_FILES
    if serialization == "legacy"
    or (setting, container) in {("fully", "module"), ("weakly", "state_dict")}
)
FIXTURES = pathlib.Path(__file__).parent / "torch_checkpoints"
FIXTURE_SEED = 7
ROW_STEP = 2  # W[i, j] = storage[offset + ROW_STEP * i + j]
# The prefix nn.DataParallel adds to every key, on the weakly state_dict files.
PREFIX = {"fully": "", "weakly": "module."}

# name -> (values, torch dtype name). bfloat16 values are exactly representable.
TENSOR_KINDS = {
    "float64": (np.arange(6, dtype=np.float64).reshape(2, 3) / 4 - 0.3, "float64"),
    "float32": (np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "float32"),
    "float16": (np.array([0.5, -1.25, 3.0], np.float16), "float16"),
    "bfloat16": (np.array([1.5, -2.0, 0.0078125, 384.0], np.float32), "bfloat16"),
    "int64": (np.array([-(2**40), 0, 7], np.int64), "int64"),
    "int32": (np.array([[-5, 6]], np.int32), "int32"),
    "int16": (np.array([-300, 300], np.int16), "int16"),
    "int8": (np.array([-128, 127], np.int8), "int8"),
    "uint8": (np.array([0, 200, 255], np.uint8), "uint8"),
    "bool": (np.array([True, False, True]), "bool"),
    "scalar": (np.array(3.5, np.float32), "float32"),
    "empty": (np.zeros((0, 4), np.float32), "float32"),
}
# name -> (tensor it views, the view): the same expression slices a NumPy array or a tensor.
TENSOR_VIEWS = {
    "float32_transposed": ("float32", lambda x: x.T),
    "float32_row_slice": ("float32", lambda x: x[1:]),
    "float32_every_other_column": ("float32", lambda x: x[:, ::2]),
    "int64_tail": ("int64", lambda x: x[1:]),
}


def fixture_path(setting: str, container: str, serialization: str, folder=FIXTURES):
    return pathlib.Path(folder) / f"psp_{setting}_{container}_{serialization}.pt"


def strided_layout(setting: str) -> tuple[np.ndarray, dict[str, tuple[int, tuple, tuple]]]:
    """One float32 storage and, per official key, its view (offset, shape, stride in elements).

    The storage is the leading values of ``random_state_dict``'s tensors, so every view has
    the scale the official initialisation gives that tensor.
    """
    values = weights.random_state_dict(setting, seed=FIXTURE_SEED)
    pieces, views, offset = [], {}, 0
    for key, array in values.items():
        stride = (ROW_STEP, 1) if array.ndim == 2 else (1,)
        numel = 1 + sum((n - 1) * s for n, s in zip(array.shape, stride, strict=True))
        pieces.append(array.ravel()[:numel])
        views[key] = (offset, array.shape, stride)
        offset += numel
    return np.concatenate(pieces), views


def expected_state_dict(setting: str, layout: str = "strided") -> dict[str, np.ndarray]:
    """The arrays a fixture holds, by official key (no prefix), computed with NumPy indexing."""
    if layout == "contiguous":
        return weights.random_state_dict(setting, seed=FIXTURE_SEED)
    storage, views = strided_layout(setting)
    state = {}
    for key, (offset, shape, stride) in views.items():
        index = offset + np.tensordot(np.array(stride), np.indices(shape), axes=1)
        state[key] = storage[index]
    return state


def expected_tensor_kinds() -> dict[str, np.ndarray]:
    """The arrays ``tensor_kinds_*.pt`` hold (bfloat16 read as float32)."""
    arrays = {name: values for name, (values, _) in TENSOR_KINDS.items()}
    arrays |= {name: view(arrays[base]) for name, (base, view) in TENSOR_VIEWS.items()}
    return arrays


# ------------------------------------------------------------------------------------------
# Hand-written checkpoints (no torch): any object in the legacy or zip layout.
# ------------------------------------------------------------------------------------------

SYSTEM_INFO = {
    "protocol_version": LEGACY_PROTOCOL_VERSION,
    "little_endian": True,
    "type_sizes": {"short": 2, "int": 4, "long": 4},
}


def legacy_file(path, saved):
    """``saved`` in the legacy layout (five pickles; no storages), as torch 1.2 frames it."""
    parts = (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, SYSTEM_INFO, saved, [])
    path.write_bytes(b"".join(pickle.dumps(part, protocol=2) for part in parts))
    return path


def zip_file(path, saved):
    """``saved`` in the zip layout (``archive/data.pkl``, no storages)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(saved, protocol=2))
        archive.writestr("archive/byteorder", "little")
    return path


HAND_WRITTEN = {"legacy": legacy_file, "zip": zip_file}


class Call:
    """Pickles as ``function(*args)``, the way a malicious checkpoint runs code on load."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


# ------------------------------------------------------------------------------------------
# Writing (needs torch).
# ------------------------------------------------------------------------------------------


class _LegacyBackend:
    """What PyTorch <= 1.2 stored in every module's ``_backend`` and how it pickled it."""

    def __reduce__(self):
        import torch.nn.backends.thnn

        return (torch.nn.backends.thnn._get_thnn_function_backend, ())


_AUTHORS_CLASSES = {
    "fully": ("psp_net", "AVGA", "LSTM_A_V", "PSP", "Classify", "AVSimilarity"),
    "weakly": ("psp_net", "AVGA", "LSTM_A_V", "PSP"),
}
# Sub-module path -> authors' class (others: the torch module the keys imply).
_AUTHORS_CONTAINERS = {
    "attention": "AVGA",
    "lstm_a_v": "LSTM_A_V",
    "psp": "PSP",
    "v_classify": "Classify",
    "a_classify": "Classify",
}


def _authors_classes(torch, setting: str) -> dict[str, type]:
    """Parameter-free ``nn.Module`` classes named like the authors', importable from
    ``fully_model`` / ``weakly_model`` (registered in ``sys.modules``) so pickle finds them."""
    module_name = f"{setting}_model"
    module = sys.modules.get(module_name) or types.ModuleType(module_name)
    if not hasattr(module, "psp_net"):
        for name in _AUTHORS_CLASSES[setting]:
            setattr(module, name, type(name, (torch.nn.Module,), {"__module__": module_name}))
        sys.modules[module_name] = module
    return {name: getattr(module, name) for name in _AUTHORS_CLASSES[setting]}


def authors_network(torch, setting: str, tensors: dict):
    """The network as the authors' code builds it, holding ``tensors`` (key -> torch tensor)."""
    nn = torch.nn
    classes = _authors_classes(torch, setting)
    modules = {"": classes["psp_net"]()}

    def new_module(path: str):
        if path in _AUTHORS_CONTAINERS:
            return classes[_AUTHORS_CONTAINERS[path]]()
        if path in ("fa", "fv"):
            return nn.Sequential()
        if path.endswith(("lstm_audio", "lstm_video")):
            units, inputs = (
                tensors[f"{path}.weight_hh_l0"].shape[1],
                tensors[f"{path}.weight_ih_l0"].shape[1],
            )
            return nn.LSTM(inputs, units, 1, batch_first=True, bidirectional=True)
        if path.endswith("layer_norm"):
            return nn.LayerNorm(tensors[f"{path}.weight"].shape[0], eps=1e-6)
        out_features, in_features = tensors[f"{path}.weight"].shape
        return nn.Linear(in_features, out_features, bias=f"{path}.bias" in tensors)

    def module_at(path: str):
        if path not in modules:
            parent, _, name = path.rpartition(".")
            modules[path] = new_module(path)
            module_at(parent).add_module(name, modules[path])
        return modules[path]

    for key, tensor in tensors.items():
        path, _, name = key.rpartition(".")
        setattr(module_at(path), name, nn.Parameter(tensor))
    # Parameter-free children of the authors' networks.
    module_at("").add_module("relu", nn.ReLU())
    module_at("psp").add_module("dropout", nn.Dropout(p=0.1))
    if setting == "fully":
        module_at("").add_module("av_simm", classes["AVSimilarity"]())
    for module in modules[""].modules():
        module._backend = _LegacyBackend()
    return modules[""]


def _psp_tensors(torch, setting: str, layout: str) -> dict:
    if layout == "contiguous":
        arrays = expected_state_dict(setting, layout)
        return {key: torch.from_numpy(array.copy()) for key, array in arrays.items()}
    storage, views = strided_layout(setting)
    base = torch.from_numpy(storage.copy())
    return {
        key: base.as_strided(shape, stride, offset)
        for key, (offset, shape, stride) in views.items()
    }


def _tensor_kinds(torch) -> dict:
    tensors = {
        name: torch.tensor(values.tolist(), dtype=getattr(torch, dtype)).reshape(values.shape)
        for name, (values, dtype) in TENSOR_KINDS.items()
    }
    tensors |= {name: view(tensors[base]) for name, (base, view) in TENSOR_VIEWS.items()}
    return tensors


def write_fixtures(folder, layout: str = "strided", files=COMMITTED_FILES) -> None:
    """Writes the PSP checkpoints ``files`` and ``tensor_kinds_{legacy,zip}.pt`` into
    ``folder``."""
    import torch

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # legacy saves warn that the classes have no source file
        warnings.simplefilter("ignore")
        for setting, container, serialization in files:
            saved = authors_network(torch, setting, _psp_tensors(torch, setting, layout))
            if container == "state_dict":
                saved = saved.state_dict()
                if PREFIX[setting]:
                    saved = collections.OrderedDict(
                        (PREFIX[setting] + key, value) for key, value in saved.items()
                    )
            path = fixture_path(setting, container, serialization, folder)
            torch.save(saved, path, _use_new_zipfile_serialization=serialization == "zip")
        for serialization in SERIALIZATIONS:
            torch.save(
                _tensor_kinds(torch),
                folder / f"tensor_kinds_{serialization}.pt",
                _use_new_zipfile_serialization=serialization == "zip",
            )


if __name__ == "__main__":
    write_fixtures(sys.argv[1] if len(sys.argv) > 1 else FIXTURES)
