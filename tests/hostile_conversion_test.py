"""Hostile checkpoints end in one error line, in bounded memory: deep pickles, tensors far
larger than their storage, deflate bombs, module trees that loop or explode, dunder
attributes (issue 20, items 10-12).

Memory is measured in a fresh process (``ave_tf.testing.programs.run_python``): reading a file and
checking it against the official ``state_dict``'s names and shapes, as ``ave_tf.convert`` does
before it assigns anything, without TensorFlow.
"""

import os
import pathlib
import pickle
import zipfile

import numpy as np
import pytest

from ave_tf import convert, state_dicts, torch_checkpoint
from ave_tf.testing.programs import run_program, run_python
from tests import hostile_checkpoints as hostile
from tests import official_weights as weights
from tests import torch_checkpoint_fixtures as fixtures

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# A fresh Python with numpy and ave_tf.convert is ~35 MiB; the checked PSP parameters are 7 MiB.
PEAK_RSS_BOUND = 150 * 2**20
CHECK_AGAINST_PSP_FULLY = """
import sys
from ave_tf import convert, state_dicts
from tests import official_weights
try:
    checkpoint = convert.read_checkpoint(sys.argv[1])
    shapes = official_weights.state_dict_shapes("fully")
    try:
        state_dicts.checked_state_dict(checkpoint.tensors, shapes, set(), "fully")
    except convert.StateDictError as error:  # as the command line says it
        raise convert.StateDictError(f"{sys.argv[1]}: {error}") from None
except convert.UsageError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
"""


def check_in_fresh_process(path):
    """Exit code, stderr and peak RSS of reading ``path`` and checking it against the fully
    network's names and shapes."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = run_python("-c", CHECK_AGAINST_PSP_FULLY, path, env=env, timeout=120)
    return done.returncode, done.stderr, done.peak_rss_bytes


def assert_peak_below(peak, bound):
    assert peak is not None, "the process died before it reported its peak RSS"
    assert peak < bound, f"peak RSS {peak / 2**20:.0f} MiB"


def assert_one_error_line(code, stderr, *needles):
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, stderr[-2000:])
    for needle in needles:
        assert needle in lines[0], lines[0]


def assert_one_line_naming(error, path):
    assert isinstance(error.value, convert.UsageError)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message, message


# --------------------------------------------------------------------------------------------
# Item 11: nothing is read before its name and shape are checked.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, says",
    [
        ("stride0_unknown_key.pt", "missing key"),
        ("stride0_three_keys.pt", "missing key"),
        ("deflate_bomb.npz", "missing key"),
        ("stride0_2e31_squared.pt", "missing key"),
        ("million_empty_dicts.pt", "no magic number"),
    ],
)
def test_a_file_that_would_amplify_is_refused_in_bounded_memory(tmp_path, name, says):
    path = hostile.HOSTILE_FILES[name](tmp_path / name)
    assert path.stat().st_size < 1.1e6
    code, stderr, peak = check_in_fresh_process(path)
    assert_peak_below(peak, PEAK_RSS_BOUND)
    assert_one_error_line(code, stderr, str(path), says)


def test_an_expected_key_of_a_huge_shape_is_refused_before_it_is_read(tmp_path):
    path = hostile.zip_state_dict_file(
        tmp_path / "big.pt", **{"L2.weight": (1, (hostile.STRIDE_0, 64), (0, 0))}
    )
    state = dict(weights.random_state_dict("fully", seed=0))
    state["L2.weight"] = convert.read_checkpoint(path).tensors["L2.weight"]
    with pytest.raises(convert.StateDictError, match=r"L2\.weight.*268435456, 64.*\(29, 64\)"):
        state_dicts.checked_state_dict(state, weights.state_dict_shapes("fully"), set(), "fully")


def test_the_full_size_npz_and_pt_pass_the_same_check_in_bounded_memory(tmp_path):
    npz = tmp_path / "PSP_fully.npz"
    weights.save_state_dict(weights.random_state_dict("fully", seed=0), npz)
    for path in (npz, REPO_ROOT / "tests/torch_checkpoints/psp_fully_module_legacy.pt"):
        code, stderr, peak = check_in_fresh_process(path)
        assert code == 0, stderr[-2000:]
        assert_peak_below(peak, PEAK_RSS_BOUND)


def test_an_expected_key_over_a_one_element_storage_reads_at_its_expected_shape(tmp_path):
    shape = weights.state_dict_shapes("fully")["psp.v_L1.weight"]
    path = hostile.zip_state_dict_file(
        tmp_path / "stride0.pt", **{"psp.v_L1.weight": (1, shape, (0, 0))}
    )
    state = dict(weights.random_state_dict("fully", seed=0))
    state["psp.v_L1.weight"] = convert.read_checkpoint(path).tensors["psp.v_L1.weight"]
    shapes = weights.state_dict_shapes("fully")
    values = state_dicts.checked_state_dict(state, shapes, set(), "fully")
    np.testing.assert_array_equal(values["psp.v_L1.weight"], np.ones(shape, np.float32))


def test_a_compressed_storage_record_is_refused(tmp_path):
    tensor = hostile.tensor(hostile.storage("0", 4), (4,), (1,))
    storages = {"0": np.ones(4, np.float32).tobytes()}
    path = hostile.zip_checkpoint(
        tmp_path / "deflated.pt", hostile.state_dict({"w": tensor}), storages, compress=True
    )
    with pytest.raises(torch_checkpoint.CheckpointError, match="compressed") as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)


def test_an_npz_member_is_read_only_after_its_header_is_checked(tmp_path):
    path = hostile.npz_bomb(tmp_path / "bomb.npz", elements=2**20)
    stored = convert.read_checkpoint(path).tensors["weight"]
    assert stored.shape == (2**20,) and stored.dtype == np.float32
    np.testing.assert_array_equal(stored.read(), np.zeros(2**20, np.float32))


@pytest.mark.parametrize(
    "array, says",
    [(np.array([object()], dtype=object), "Python objects"), (np.zeros(3, np.int64), "int64")],
)
def test_npz_members_that_are_not_floats_are_refused_before_reading(tmp_path, array, says):
    path = tmp_path / "odd.npz"
    np.savez(path, **{"L2.bias": array})
    shapes = {"L2.bias": array.shape}
    with pytest.raises(convert.StateDictError, match=says):
        state_dicts.checked_state_dict(convert.read_checkpoint(path).tensors, shapes, set(), "x")


# --------------------------------------------------------------------------------------------
# Item 10: nesting is bounded before anything recurses.
# --------------------------------------------------------------------------------------------


def test_a_tuple_key_nested_a_million_deep_is_one_error_line_in_bounded_memory(tmp_path):
    path = hostile.deep_tuple_key(tmp_path / "deep.pt")  # segfaulted the unpickler (exit 139)
    code, stderr, peak = check_in_fresh_process(path)
    assert_one_error_line(code, stderr, str(path), f"more than {torch_checkpoint.MAX_NESTING}")
    assert_peak_below(peak, PEAK_RSS_BOUND)


def nested_lists(depth: int):
    """``{"w": [[...[None]...]]}``: ``depth`` lists, nesting depth + 2 with the dict and None."""
    value = None
    for _ in range(depth):
        value = [value]
    return {"w": value}


@pytest.mark.parametrize("serialization", ["legacy", "zip"])
def test_nesting_is_refused_exactly_beyond_the_bound(tmp_path, serialization):
    write = fixtures.HAND_WRITTEN[serialization]
    deepest = torch_checkpoint.MAX_NESTING
    path = write(tmp_path / "fits.pt", nested_lists(deepest - 2))
    with pytest.raises(torch_checkpoint.CheckpointError, match="not all tensors"):
        torch_checkpoint.read_checkpoint(path)
    path = write(tmp_path / "deep.pt", nested_lists(deepest - 1))
    with pytest.raises(torch_checkpoint.CheckpointError, match=f"more than {deepest} deep"):
        torch_checkpoint.read_checkpoint(path)


@pytest.mark.parametrize(
    "saved",
    [
        {f"key{i}": i for i in range(100_000)},  # SETITEMS in batches of 1,000
        {"w": [[i] for i in range(100_000)]},  # APPENDS in batches
        {"w": [nested_lists(100)] * 1_000},  # one deep object memoised and reused
    ],
    ids=["wide-dict", "long-list", "shared-deep"],
)
def test_wide_pickles_are_not_taken_for_deep_ones(tmp_path, saved):
    path = fixtures.zip_file(tmp_path / "wide.pt", saved)
    with pytest.raises(torch_checkpoint.CheckpointError, match="not all tensors"):
        torch_checkpoint.read_checkpoint(path)


def test_a_pickle_of_too_many_opcodes_is_refused(tmp_path):
    path = tmp_path / "long.pt"  # EMPTY_LIST, POP, ... : never deeper than 1
    path.write_bytes(hostile.PROTO_2 + b"]0" * (torch_checkpoint.MAX_PICKLE_OPCODES // 2) + b"N.")
    with pytest.raises(torch_checkpoint.CheckpointError, match="opcodes") as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)


def test_a_damaged_pickle_stack_is_one_error_line(tmp_path):
    path = tmp_path / "underflow.pt"
    path.write_bytes(hostile.PROTO_2 + b"s.")  # SETITEM on an empty stack
    with pytest.raises(torch_checkpoint.CheckpointError, match="too few objects") as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)


# --------------------------------------------------------------------------------------------
# Item 12: module trees, dunder attributes, damaged archives.
# --------------------------------------------------------------------------------------------


def test_a_module_inside_itself_is_one_error_line(tmp_path):
    path = hostile.self_containing_module(tmp_path / "loop.pt")
    with pytest.raises(torch_checkpoint.CheckpointError, match="contains itself") as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)


def module_chain(path, modules: int, children: int):
    """``modules`` module stand-ins (memo 0..), each then given ``children`` references to the
    next one: a chain (1) or a tree of ``children ** modules`` paths. Built in this order, the
    pickle scan sees every module shallow; only the module walk sees the depth."""
    ops = hostile.PROTO_2 + hostile.MARK
    for index in range(modules):
        ops += hostile.global_name("fully_model", "psp_net") + hostile.EMPTY_TUPLE
        ops += hostile.NEWOBJ + b"r" + index.to_bytes(4, "little")  # LONG_BINPUT
    for index in range(modules):
        below = b""
        if index + 1 < modules:
            get_next = b"j" + (index + 1).to_bytes(4, "little")  # LONG_BINGET
            below = b"".join(hostile.text(f"c{n}") + get_next for n in range(children))
        fields = hostile.text("_parameters") + hostile.EMPTY_DICT
        fields += hostile.text("_buffers") + hostile.EMPTY_DICT
        fields += hostile.text("_modules") + hostile.EMPTY_DICT
        fields += hostile.MARK + below + hostile.SETITEMS
        ops += b"j" + index.to_bytes(4, "little")
        ops += hostile.EMPTY_DICT + hostile.MARK + fields + hostile.SETITEMS + hostile.BUILD
        ops += b"0"  # POP
    ops += b"1" + b"j" + (0).to_bytes(4, "little") + hostile.STOP  # POP_MARK, the first module
    return hostile.zip_checkpoint(path, ops)


@pytest.mark.parametrize(
    "modules, children, says",
    [
        (torch_checkpoint.MAX_MODULE_DEPTH + 2, 1, "nested more than"),
        (40, 2, "modules and tensors"),  # 2^40 paths through 40 modules
    ],
    ids=["deep-chain", "exploding-tree"],
)
def test_module_trees_beyond_the_bounds_are_one_error_line(tmp_path, modules, children, says):
    path = module_chain(tmp_path / "tree.pt", modules, children)
    with pytest.raises(torch_checkpoint.CheckpointError, match=says) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)


def test_a_module_chain_within_the_bounds_reads(tmp_path):
    path = module_chain(tmp_path / "tree.pt", 10, 2)  # 2^9 paths, no tensors
    checkpoint = torch_checkpoint.read_checkpoint(path)
    assert (
        checkpoint.tensors == {} and checkpoint.contents == "a pickled fully_model.psp_net module"
    )


@pytest.mark.parametrize("attribute", ["__class__", "__dict__", "__setstate__", "__reduce__"])
def test_a_dunder_attribute_set_on_a_module_is_refused(tmp_path, attribute):
    module = hostile.global_name("fully_model", "psp_net") + hostile.EMPTY_TUPLE + hostile.NEWOBJ
    state = hostile.EMPTY_DICT + hostile.text(attribute) + b"N" + hostile.SETITEM
    path = hostile.zip_checkpoint(
        tmp_path / "dunder.pt", hostile.PROTO_2 + module + state + hostile.BUILD + hostile.STOP
    )
    with pytest.raises(torch_checkpoint.UnsafeCheckpointError, match=attribute) as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)


def test_a_state_dict_key_that_is_not_a_string_is_refused(tmp_path):
    tensor = hostile.tensor(hostile.storage("0", 1), (1,), (1,))
    ops = hostile.PROTO_2 + hostile.EMPTY_DICT + hostile.integer(10**30) + tensor
    path = hostile.zip_checkpoint(
        tmp_path / "int_key.pt", ops + hostile.SETITEM + hostile.STOP, {"0": bytes(4)}
    )
    with pytest.raises(torch_checkpoint.CheckpointError, match="key is not a string") as error:
        torch_checkpoint.read_checkpoint(path)
    assert_one_line_naming(error, path)


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_random_bytes_after_the_zip_magic_are_one_error_line(tmp_path, suffix):
    path = hostile.random_zip(tmp_path / f"random{suffix}")
    with pytest.raises(convert.UsageError) as error:
        convert.read_checkpoint(path)
    assert_one_line_naming(error, path)


def test_a_truncated_npz_member_is_one_error_line_when_read(tmp_path):
    path = tmp_path / "state.npz"
    np.savez(path, weight=np.ones(1000, np.float32))
    with zipfile.ZipFile(path) as archive:
        data = archive.read("weight.npy")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weight.npy", data[:-100])
    stored = convert.read_checkpoint(path).tensors["weight"]
    with pytest.raises(torch_checkpoint.CheckpointError) as error:
        stored.read()
    assert_one_line_naming(error, path)


# --------------------------------------------------------------------------------------------
# The whole set through the command line.
# --------------------------------------------------------------------------------------------


@pytest.mark.slow  # six of these import TensorFlow to build the network they do not fit
@pytest.mark.parametrize("name", sorted(hostile.HOSTILE_FILES))
def test_command_line_answers_each_hostile_file_with_one_error_line(tmp_path, name):
    path = hostile.HOSTILE_FILES[name](tmp_path / name)
    output = tmp_path / "out.keras"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = run_program(
        "ave_tf.convert", "--setting", "fully", path, output, env=env, cwd=REPO_ROOT, timeout=300
    )
    code, stderr, peak = done.returncode, done.stderr, done.peak_rss_bytes
    lines = stderr.strip().splitlines()
    assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert [line for line in lines if line.startswith("error")] == lines[-1:], stderr[-3000:]
    assert lines[-1].startswith(f"error: {path}"), lines[-1]
    # TensorFlow and the built network are ~0.75 GiB here; each file alone would add >= 1 GiB.
    assert_peak_below(peak, 2**30)
    assert not output.exists()


def test_the_pickles_hand_written_here_are_what_pickle_reads():
    # The opcode helpers agree with the standard pickle module on a plain value.
    ops = hostile.state_dict({"a": hostile.ints([1, 2**40])})
    assert pickle.loads(ops) == {"a": (1, 2**40)}
