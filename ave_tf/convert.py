"""Loads the official PyTorch PSP parameters into the Keras networks.

Usage::

    python -m ave_tf.convert --setting fully [--tau 0.099] PSP_fully.npz psp_fully.keras

``STATE.npz`` holds the official ``state_dict`` (e.g. saved with
``numpy.savez(path, **{k: v.numpy() for k, v in torch.load(pt).items()})``): keys such as
``psp.v_L1.weight`` or ``lstm_a_v.lstm_audio.bias_hh_l0_reverse``, values in PyTorch layout
(a Linear weight is (out, in); LSTM gates i, f, g, o with two biases). The written ``.keras``
file reloads with ``keras.models.load_model`` after ``import ave_tf.models``.
"""

import dataclasses
import os
import pathlib
import sys
from collections.abc import Callable, Iterator, Mapping

import keras
import numpy as np

from ave_tf.atomic_files import atomic_path
from ave_tf.config import FullySupervisedConfig, PSPConfig, WeaklySupervisedConfig, parse_tau
from ave_tf.models import model_for_config

UNUSED_KEYS = {
    "fully": {
        "linear_v.weight",
        "linear_v.bias",
        "v_classify.L1.weight",
        "v_classify.L2.weight",
        "a_classify.L1.weight",
        "a_classify.L2.weight",
        "L3.weight",
        "L3.bias",
        "L4.weight",
        "L4.bias",
    },
    "weakly": {"temperature", "W1.weight", "W2.weight"},
}
"""Parameters the official models carry but their forward pass never uses (reference.md §6)."""


class StateDictError(ValueError):
    """The official state dict does not fit the network: names the key and the shapes."""


@dataclasses.dataclass(frozen=True)
class _Assignment:
    """One Keras variable and the official parameters it is computed from."""

    variable: keras.Variable
    keys: tuple[str, ...]
    to_keras: Callable[..., np.ndarray]
    official_shape: tuple[int, ...]


def _transposed(variable, key) -> _Assignment:
    return _Assignment(variable, (key,), np.transpose, tuple(reversed(variable.shape)))


def _same(variable, key) -> _Assignment:
    return _Assignment(variable, (key,), np.asarray, tuple(variable.shape))


def _linear(dense, key: str) -> Iterator[_Assignment]:
    yield _transposed(dense.kernel, f"{key}.weight")
    if dense.use_bias:
        yield _same(dense.bias, f"{key}.bias")


def _lstm(bidirectional, key: str) -> Iterator[_Assignment]:
    for direction, suffix in (
        (bidirectional.forward_layer, ""),
        (bidirectional.backward_layer, "_reverse"),
    ):
        cell = direction.cell
        yield _transposed(cell.kernel, f"{key}.weight_ih_l0{suffix}")
        yield _transposed(cell.recurrent_kernel, f"{key}.weight_hh_l0{suffix}")
        keys = (f"{key}.bias_ih_l0{suffix}", f"{key}.bias_hh_l0{suffix}")
        yield _Assignment(cell.bias, keys, np.add, tuple(cell.bias.shape))


def _assignments(model: keras.Model, setting: str) -> Iterator[_Assignment]:
    """Every Keras variable of ``model`` with the official key(s) it comes from."""
    if any(layer.name.endswith("self_attention") for layer in model.layers):
        raise StateDictError("the official networks have no self-attention block (SAPSP)")
    avga = model.get_layer("avga")
    for name in ("affine_video", "affine_audio", "affine_v", "affine_g", "affine_h"):
        yield from _linear(getattr(avga, name), f"attention.{name}")
    yield from _lstm(model.get_layer("audio_lstm"), "lstm_a_v.lstm_audio")
    yield from _lstm(model.get_layer("visual_lstm"), "lstm_a_v.lstm_video")
    psp = model.get_layer("psp")
    # The paper's W1v, W1a, W2a, W2v, W3 are the official v_L2, a_L1, a_L2, v_L1, *_fc.
    official = {"w1_visual": "v_L2", "w1_audio": "a_L1", "w2_audio": "a_L2", "w2_visual": "v_L1"}
    official |= {"w3_visual": "v_fc", "w3_audio": "a_fc"}
    for name, dense in psp.projections.items():
        yield from _linear(dense, f"psp.{official[name]}")
    yield _same(psp.layer_norm.gamma, "psp.layer_norm.weight")
    yield _same(psp.layer_norm.beta, "psp.layer_norm.bias")
    yield from _linear(model.get_layer("classifier_hidden"), "L1")
    yield from _linear(model.get_layer("classifier_output"), "L2")
    if setting == "fully":
        for index in (1, 2):
            yield from _linear(model.get_layer(f"audio_projection_{index}"), f"fa.{index - 1}")
            yield from _linear(model.get_layer(f"visual_projection_{index}"), f"fv.{index - 1}")
    else:
        yield from _linear(model.get_layer("visual_projection"), "linear_v")
        if any(layer.name == "weighting_branch" for layer in model.layers):
            yield from _linear(model.get_layer("weighting_branch").projection, "W3")


def setting_of(config: PSPConfig) -> str:
    """``"fully"`` or ``"weakly"``."""
    if isinstance(config, FullySupervisedConfig):
        return "fully"
    if isinstance(config, WeaklySupervisedConfig):
        return "weakly"
    raise TypeError(
        f"config must be a Fully- or WeaklySupervisedConfig; got {type(config).__name__}"
    )


def load_official_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray], setting: str):
    """Assigns an official ``state_dict`` to a network built by ``ave_tf.models``.

    Raises:
        StateDictError: a key the network needs is missing, a key is unknown (neither used nor
            one of the official unused ones), or a value has the wrong shape or is not finite.
    """
    ignorable = UNUSED_KEYS[setting] | ({"W3.weight"} if setting == "weakly" else set())
    assign_state_dict(list(_assignments(model, setting)), state_dict, ignorable, setting)


def assign_state_dict(
    assignments: list[_Assignment],
    state_dict: Mapping[str, np.ndarray],
    ignorable: set[str],
    network: str,
):
    """Checks ``state_dict`` against ``assignments`` (missing, unknown, shape, finite), then
    assigns every variable. ``ignorable`` keys may be present unused; ``network`` names the
    network in the unknown-key error."""
    needed = {key for assignment in assignments for key in assignment.keys}
    missing = sorted(needed - set(state_dict))
    if missing:
        raise StateDictError(f"missing key {missing[0]!r} (all missing: {missing})")
    unknown = sorted(set(state_dict) - needed - ignorable)
    if unknown:
        raise StateDictError(
            f"unknown key {unknown[0]!r} for the {network} network (all: {unknown})"
        )
    for assignment in assignments:
        values = []
        for key in assignment.keys:
            value = np.asarray(state_dict[key], dtype=np.float32)
            if value.shape != assignment.official_shape:
                raise StateDictError(
                    f"key {key!r} has shape {value.shape}; expected {assignment.official_shape}"
                )
            if not np.all(np.isfinite(value)):
                raise StateDictError(f"key {key!r} holds NaN or Inf values")
            values.append(value)
        assignment.variable.assign(assignment.to_keras(*values))


def official_model(
    state_dict: Mapping[str, np.ndarray], config: PSPConfig, with_internals: bool = False
) -> keras.Model:
    """The network for ``config``'s setting with the official parameters loaded."""
    setting = setting_of(config)
    model = model_for_config(config, with_internals)
    load_official_weights(model, state_dict, setting)
    return model


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads an ``.npz`` of official parameters; errors name the file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise StateDictError(f"{path}: cannot read an .npz state dict ({error})") from error


def save_atomically(model: keras.Model, path: str | os.PathLike):
    """Saves ``model`` to a ``.keras`` file via a temporary file and a rename."""
    path = pathlib.Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"output must end in .keras; got {path}")
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)


def main(argv):
    from absl import flags

    arguments = argv[1:]
    if len(arguments) != 2:
        raise SystemExit(
            "usage: python -m ave_tf.convert --setting {fully,weakly} STATE.npz OUT.keras"
        )
    state_path, output_path = arguments
    setting = flags.FLAGS.setting
    config = FullySupervisedConfig() if setting == "fully" else WeaklySupervisedConfig()
    if flags.FLAGS.tau is not None:
        config = config.replace(tau=parse_tau(flags.FLAGS.tau))
    try:
        model = official_model(read_state_dict(state_path), config)
        save_atomically(model, output_path)
    except (StateDictError, ValueError, OSError) as error:
        print(f"error: {state_path}: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {output_path}: the official {setting} network, tau={config.tau}")


def _define_flags():
    from absl import flags

    flags.DEFINE_enum(
        "setting", None, ["fully", "weakly"], "Which official network STATE.npz holds."
    )
    flags.DEFINE_string(
        "tau",
        None,
        "PSP threshold to build with (number, 'inf', '-inf' or 'off'); default: "
        "the official value of the setting (0.099 fully, 0.095 weakly).",
    )
    flags.mark_flag_as_required("setting")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
