"""PyTorch ``state_dict`` values into Keras variables: every key, shape, dtype and value checked
first, then all variables assigned, so a refused ``state_dict`` changes nothing.

A network's mapping is a list of `Assignment`s: one Keras variable, the PyTorch key(s) it is
computed from and how (PyTorch layouts: a Linear weight is (out, in); LSTM gates i, f, g, o
with two biases). ``ave_tf.convert`` maps the official PSP networks, ``ave_tf.avel_weights``
AVE-ECCV18's ``att_Net``. NumPy only: the variables come from the caller's Keras model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ave_tf import torch_checkpoint
from ave_tf.errors import UsageError

if TYPE_CHECKING:
    import keras


class StateDictError(UsageError, ValueError):
    """A ``state_dict`` that does not fit the network: names the key and the shapes."""


@dataclasses.dataclass(frozen=True)
class Assignment:
    """One Keras variable and the PyTorch parameters it is computed from."""

    variable: keras.Variable
    keys: tuple[str, ...]
    to_keras: Callable[..., np.ndarray]
    official_shape: tuple[int, ...]


def _transposed(variable, key) -> Assignment:
    return Assignment(variable, (key,), np.transpose, tuple(reversed(variable.shape)))


def same_assignment(variable, key) -> Assignment:
    """``variable`` from ``key`` as it is (a bias, a LayerNorm gamma)."""
    return Assignment(variable, (key,), np.asarray, tuple(variable.shape))


def linear_assignments(dense, key: str) -> Iterator[Assignment]:
    """A ``keras.layers.Dense`` from torch ``nn.Linear`` ``<key>.weight`` (transposed) and bias."""
    yield _transposed(dense.kernel, f"{key}.weight")
    if dense.use_bias:
        yield same_assignment(dense.bias, f"{key}.bias")


def lstm_assignments(bidirectional, key: str) -> Iterator[Assignment]:
    """A bidirectional Keras LSTM from a one-layer bidirectional torch ``nn.LSTM`` ``<key>``.

    Both gate orders are (input, forget, cell, output); torch's two biases are summed.
    """
    for direction, suffix in (
        (bidirectional.forward_layer, ""),
        (bidirectional.backward_layer, "_reverse"),
    ):
        cell = direction.cell
        yield _transposed(cell.kernel, f"{key}.weight_ih_l0{suffix}")
        yield _transposed(cell.recurrent_kernel, f"{key}.weight_hh_l0{suffix}")
        keys = (f"{key}.bias_ih_l0{suffix}", f"{key}.bias_hh_l0{suffix}")
        yield Assignment(cell.bias, keys, np.add, tuple(cell.bias.shape))


def assign_state_dict(
    assignments: list[Assignment],
    state_dict: Mapping[str, np.ndarray | torch_checkpoint.StoredTensor],
    ignorable: set[str],
    network: str,
):
    """Checks all of ``state_dict`` against ``assignments`` (`checked_state_dict`), then assigns
    every variable: on an error no variable has changed. ``ignorable`` keys may be present
    unused (they are never read); ``network`` names the network in the unknown-key error."""
    expected = {key: a.official_shape for a in assignments for key in a.keys}
    values = checked_state_dict(state_dict, expected, ignorable, network)
    for assignment in assignments:
        assignment.variable.assign(assignment.to_keras(*(values[k] for k in assignment.keys)))


def checked_state_dict(
    state_dict: Mapping[str, np.ndarray | torch_checkpoint.StoredTensor],
    expected: Mapping[str, tuple[int, ...]],
    ignorable: set[str],
    network: str,
) -> dict[str, np.ndarray]:
    """The ``expected`` keys of ``state_dict`` as float32 arrays of the expected shapes.

    Names, shapes and dtypes are checked before any `StoredTensor` is read, so a file reads no
    more than the expected shapes hold; then each is read and checked to be finite.

    Raises:
        StateDictError: a key is missing, a key is neither expected nor ``ignorable``, or a
            value has another shape, a dtype that is not floating point, or NaN/Inf values.
    """
    missing = sorted(set(expected) - set(state_dict))
    if missing:
        raise StateDictError(f"missing key {missing[0]!r} (all missing: {missing})")
    unknown = sorted(set(state_dict) - set(expected) - ignorable)
    if unknown:
        shown = ", ".join(map(torch_checkpoint.shown, unknown[:10]))
        raise StateDictError(
            f"unknown key {torch_checkpoint.shown(unknown[0])} for the {network} network "
            f"({len(unknown)} in all: {shown}{', ...' if len(unknown) > 10 else ''})"
        )
    for key, shape in expected.items():
        value = state_dict[key]
        if not isinstance(value, torch_checkpoint.StoredTensor):
            value = np.asarray(value)
        if tuple(value.shape) != shape:
            raise StateDictError(f"key {key!r} has shape {tuple(value.shape)}; expected {shape}")
        if value.dtype.kind != "f":
            raise StateDictError(f"key {key!r} has dtype {value.dtype}; expected floating point")
    values = {}
    for key in expected:
        value = state_dict[key]
        if isinstance(value, torch_checkpoint.StoredTensor):
            value = value.read()
        values[key] = np.asarray(value, dtype=np.float32)
        if not np.all(np.isfinite(values[key])):
            raise StateDictError(f"key {key!r} holds NaN or Inf values")
    return values
