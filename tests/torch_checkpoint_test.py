"""``ave_tf.torch_checkpoint`` reads what torch wrote, to the same arrays, and runs nothing a
file asks for.

The committed files (``tests/torch_checkpoints/``, written by torch with
``tests/torch_checkpoint_fixtures.py``) cover the parser without torch; where torch is
importable, fresh files of both formats are written and read back against ``torch.load``.
Malicious files are written with the standard ``pickle`` module (``fixtures.legacy_file`` /
``zip_file``): each would create a marker file if anything in it ran.
"""

import collections
import os
import pickle
import subprocess

import numpy as np
import pytest

from ave_tf import torch_checkpoint
from ave_tf.errors import UsageError
from tests import hostile_checkpoints as hostile
from tests import official_weights as weights
from tests import torch_checkpoint_fixtures as fixtures


def assert_one_line_naming(error, path):
    message = str(error.value)
    assert isinstance(error.value, UsageError)
    assert message.startswith(str(path)), message
    assert "\n" not in message, message


# --------------------------------------------------------------------------------------------
# What torch wrote, read back.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting, container, serialization", fixtures.COMMITTED_FILES)
def test_committed_psp_checkpoints_read_to_the_arrays_torch_saved(
    setting, container, serialization
):
    checkpoint = torch_checkpoint.read_checkpoint(
        fixtures.fixture_path(setting, container, serialization)
    )
    assert checkpoint.serialization == serialization
    if container == "module":
        assert checkpoint.contents == f"a pickled {setting}_model.psp_net module"
        prefix = ""
    else:
        assert checkpoint.contents == "a state_dict"
        prefix = fixtures.PREFIX[setting]
    expected = fixtures.expected_state_dict(setting)
    assert set(checkpoint.tensors) == {prefix + key for key in expected}
    assert {key: value.shape for key, value in expected.items()} == weights.state_dict_shapes(
        setting
    )
    for key, value in expected.items():
        got = checkpoint.tensors[prefix + key].read()
        assert got.dtype == np.float32, key
        np.testing.assert_array_equal(got, value, err_msg=key)


def test_committed_fixture_values_would_expose_a_transposed_or_shifted_read():
    expected = fixtures.expected_state_dict("fully")
    square = expected["psp.v_L1.weight"]
    assert not np.array_equal(square, square.T)
    assert len(np.unique(square)) > square.shape[0]  # not one repeated row
    assert not np.array_equal(expected["psp.v_L1.weight"], expected["psp.v_L2.weight"])


@pytest.mark.parametrize("serialization", fixtures.SERIALIZATIONS)
def test_every_dtype_and_view_reads_to_the_saved_values(serialization):
    tensors = torch_checkpoint.read_checkpoint(
        fixtures.FIXTURES / f"tensor_kinds_{serialization}.pt"
    ).arrays()
    expected = fixtures.expected_tensor_kinds()
    assert set(tensors) == set(expected)
    for name, value in expected.items():
        got = tensors[name]
        assert got.dtype == value.dtype and got.shape == value.shape, name
        np.testing.assert_array_equal(got, value, err_msg=name)
        assert got.flags.c_contiguous and got.flags.writeable, name


@pytest.mark.slow  # ~20 s with torch: writes and loads 10 files of real size; skipped without
def test_fresh_checkpoints_written_by_torch_read_as_torch_loads_them(tmp_path):
    torch = pytest.importorskip("torch")
    fixtures.write_fixtures(tmp_path, layout="contiguous", files=fixtures.ALL_FILES)
    for setting, container, serialization in fixtures.ALL_FILES:
        path = fixtures.fixture_path(setting, container, serialization, tmp_path)
        got = torch_checkpoint.read_checkpoint(path).arrays()
        loaded = torch.load(path, weights_only=False)  # our own file: trusted
        reference = loaded.state_dict() if container == "module" else loaded
        assert set(got) == set(reference), path
        for key, tensor in reference.items():
            np.testing.assert_array_equal(got[key], tensor.numpy(), err_msg=f"{path} {key}")
        expected = fixtures.expected_state_dict(setting, "contiguous")
        prefix = fixtures.PREFIX[setting] if container == "state_dict" else ""
        for key, value in expected.items():
            np.testing.assert_array_equal(got[prefix + key], value, err_msg=f"{path} {key}")
    for serialization in fixtures.SERIALIZATIONS:
        path = tmp_path / f"tensor_kinds_{serialization}.pt"
        got = torch_checkpoint.read_checkpoint(path).arrays()
        for name, tensor in torch.load(path).items():
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            np.testing.assert_array_equal(got[name], tensor.numpy(), err_msg=name)


# --------------------------------------------------------------------------------------------
# Nothing in a file runs.
# --------------------------------------------------------------------------------------------


def create_file(path):
    """A function of a non-standard module: the reader sees it as a module class."""
    with open(path, "w") as file:
        file.write("ran")


class Trap:
    """A class whose own ``__setstate__`` would create a file when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __setstate__(self, state):
        create_file(state["marker"])


PAYLOADS = {
    "os.system": lambda marker: fixtures.Call(os.system, f"touch {marker}"),
    "builtins.eval": lambda marker: fixtures.Call(eval, f"open({str(marker)!r}, 'w')"),
    "subprocess.call": lambda marker: fixtures.Call(subprocess.call, ["touch", str(marker)]),
}


@pytest.mark.parametrize("serialization", ["legacy", "zip"])
@pytest.mark.parametrize("position", ["top level", "inside a state dict"])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_pickled_call_is_refused_naming_it_and_nothing_runs(
    tmp_path, payload, position, serialization
):
    marker = tmp_path / "marker"
    call = PAYLOADS[payload](marker)
    saved = call if position == "top level" else collections.OrderedDict(weight=call)
    path = fixtures.HAND_WRITTEN[serialization](tmp_path / "evil.pt", saved)
    with pytest.raises(torch_checkpoint.UnsafeCheckpointError) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)
    function = call.function
    assert f"{function.__module__}.{function.__qualname__}" in str(error.value)  # posix.system
    assert not marker.exists()


@pytest.mark.parametrize("serialization", ["legacy", "zip"])
def test_a_user_function_with_arguments_is_refused_and_never_runs(tmp_path, serialization):
    marker = tmp_path / "marker"
    saved = collections.OrderedDict(weight=fixtures.Call(create_file, str(marker)))
    path = fixtures.HAND_WRITTEN[serialization](tmp_path / "evil.pt", saved)
    with pytest.raises(torch_checkpoint.UnsafeCheckpointError) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)
    assert f"{create_file.__module__}.create_file" in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize("serialization", ["legacy", "zip"])
def test_a_classes_own_setstate_never_runs(tmp_path, serialization):
    marker = tmp_path / "marker"
    path = fixtures.HAND_WRITTEN[serialization](tmp_path / "trap.pt", Trap(str(marker)))
    with pytest.raises(torch_checkpoint.CheckpointError) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)
    assert "not a pickled nn.Module" in str(error.value)
    assert not marker.exists()


def test_other_torch_functions_are_refused(tmp_path):
    # PROTO 2, GLOBAL torch.load, the argument "x", REDUCE: torch.load("x") if it ran.
    path = tmp_path / "evil.pt"
    path.write_bytes(b"\x80\x02ctorch\nload\nX\x01\x00\x00\x00x\x85R.")
    with pytest.raises(torch_checkpoint.UnsafeCheckpointError) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)
    assert "torch.load" in str(error.value)


# --------------------------------------------------------------------------------------------
# Files that are not (whole) checkpoints.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["psp_weakly_module_legacy.pt", "psp_weakly_state_dict_zip.pt", "tensor_kinds_zip.pt"]
)
@pytest.mark.parametrize("kept", [0.999, 0.5, 0.02])
def test_truncated_files_are_one_line_errors(tmp_path, name, kept):
    data = (fixtures.FIXTURES / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * kept)])
    with pytest.raises(torch_checkpoint.CheckpointError) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)
    assert "truncated" in str(error.value)


def _npz(path):
    with open(path, "wb") as file:
        np.savez(file, weight=np.zeros(3))


@pytest.mark.parametrize(
    "content, says",
    [
        (b"", "empty file"),
        (b"hello, world\n", "not a PyTorch checkpoint"),
        (bytes(range(256)), "not a PyTorch checkpoint"),
        (pickle.dumps({"weight": [1.0, 2.0]}, protocol=2), "not a PyTorch checkpoint"),
        (_npz, "not a PyTorch checkpoint"),
        (lambda path: fixtures.legacy_file(path, {"epoch": 3}), "not all tensors"),
        (lambda path: fixtures.zip_file(path, [1, 2]), "holds a list"),
    ],
    ids=["empty", "text", "bytes", "plain-pickle", "npz", "dict-of-ints", "list"],
)
def test_non_checkpoints_are_one_line_errors(tmp_path, content, says):
    path = tmp_path / "file.pt"
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    with pytest.raises(torch_checkpoint.CheckpointError) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)
    assert says in str(error.value)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths_are_one_line_errors(tmp_path, kind):
    path = tmp_path / "PSP_fully.pt"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(torch_checkpoint.CheckpointError) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)


def _one_storage_file(path, pickled):
    """A zip-format file with ``pickled`` and storage ``0``: 2 float32 ones."""
    return hostile.zip_checkpoint(path, pickled, {"0": np.ones(2, np.float32).tobytes()})


def test_a_pickle_cannot_rewrite_a_storage_to_read_past_its_bytes(tmp_path):
    # The storage, then BUILD {"numel": 10**9} on it: were that accepted, a tensor view could
    # reach past the 8 bytes the file holds.
    numel = hostile.EMPTY_DICT + hostile.text("numel") + hostile.integer(10**9) + hostile.SETITEM
    pickled = hostile.PROTO_2 + hostile.storage("0", 2) + numel + hostile.BUILD + hostile.STOP
    path = _one_storage_file(tmp_path / "evil.pt", pickled)
    with pytest.raises(torch_checkpoint.UnsafeCheckpointError) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)
    assert "_Storage" in str(error.value)


@pytest.mark.parametrize("size", [(10**7, 10**7), (2**31, 2**31)])
def test_a_huge_view_of_a_small_storage_is_read_only_on_request_then_a_one_line_error(
    tmp_path, size
):
    # {"w": _rebuild_tensor_v2(storage, 0, size, (0, 0), False)}: 400 TB or 2^62 elements over
    # stride 0, inside the storage's bounds.
    tensor = hostile.tensor(hostile.storage("0", 2), size, (0, 0))
    path = _one_storage_file(tmp_path / "huge.pt", hostile.state_dict({"w": tensor}))
    stored = torch_checkpoint.read_checkpoint(path).tensors["w"]
    assert stored.shape == size and stored.dtype == np.float32
    with pytest.raises(torch_checkpoint.CheckpointError) as error:
        stored.read()
    assert_one_line_naming(error, path)
    assert "does not fit in memory" in str(error.value)
