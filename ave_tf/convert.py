"""Loads the official PyTorch PSP parameters (or AVE-ECCV18's AVEL) into the Keras networks.

Usage::

    python -m ave_tf.convert --setting fully [--tau 0.099] PSP_fully.pt psp_fully.keras
    python -m ave_tf.convert --model avel --setting weakly att_Net.pt avel_weakly.keras

reads the authors' released checkpoint directly, without torch and without their code:
``ave_tf.torch_checkpoint`` reads ``torch.save`` files in the legacy format (PyTorch <= 1.5,
what the authors' PyTorch 1.2 wrote) and the zip format (PyTorch >= 1.6), holding a whole
pickled network (``torch.save(net_model, ...)``, as the released files do) or a ``state_dict``,
with or without ``nn.DataParallel``'s ``module.`` prefix. Nothing in the file is executed: a
file that asks for anything but tensors and module classes is refused, naming what it asked for.
An ``.npz`` of the ``state_dict`` (``numpy.savez(path, **{key: array})``) is read too.

Keys are the official names, e.g. ``psp.v_L1.weight`` or
``lstm_a_v.lstm_audio.bias_hh_l0_reverse``, values in PyTorch layout (a Linear weight is
(out, in); LSTM gates i, f, g, o with two biases). The written ``.keras`` file reloads with
``ave_tf.predictors.load_keras_model`` (or ``keras.models.load_model`` after
``import ave_tf.models``). It prints, e.g.::

    read 47 tensors from PSP_fully.pt (PyTorch legacy format: a pickled fully_model.psp_net module)
    wrote psp_fully.keras: the official fully network, tau=0.099

``--model avel`` reads an ``att_Net`` of YapengTian/AVE-ECCV18 (keys ``affine_video.weight``,
``lstm_audio.weight_ih_l0``, ``L1.weight``, ...; see ``ave_tf.avel_weights``): the fully and
weakly ``att_Net`` have the same parameters, so ``--setting`` says which network to build; a
weakly file that also holds PSP's ``W3.weight`` gets the weighting branch.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import zipfile
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
from absl import flags

from ave_tf import torch_checkpoint
from ave_tf.atomic_files import atomic_path
from ave_tf.config import (
    AVELFullySupervisedConfig,
    AVELWeaklySupervisedConfig,
    FullySupervisedConfig,
    PSPConfig,
    WeaklySupervisedConfig,
    parse_tau,
)
from ave_tf.errors import UsageError
from ave_tf.state_dicts import (
    Assignment,
    StateDictError,
    assign_state_dict,
    linear_assignments,
    lstm_assignments,
    same_assignment,
)

if TYPE_CHECKING:
    import keras

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


DATA_PARALLEL_PREFIX = "module."
"""What ``nn.DataParallel`` puts before every key of the network it wraps."""


def _assignments(model: keras.Model, setting: str) -> Iterator[Assignment]:
    """Every Keras variable of ``model`` with the official key(s) it comes from."""
    if any(layer.name.endswith("self_attention") for layer in model.layers):
        raise StateDictError("the official networks have no self-attention block (SAPSP)")
    avga = model.get_layer("avga")
    for name in ("affine_video", "affine_audio", "affine_v", "affine_g", "affine_h"):
        yield from linear_assignments(getattr(avga, name), f"attention.{name}")
    yield from lstm_assignments(model.get_layer("audio_lstm"), "lstm_a_v.lstm_audio")
    yield from lstm_assignments(model.get_layer("visual_lstm"), "lstm_a_v.lstm_video")
    psp = model.get_layer("psp")
    # The paper's W1v, W1a, W2a, W2v, W3 are the official v_L2, a_L1, a_L2, v_L1, *_fc.
    official = {"w1_visual": "v_L2", "w1_audio": "a_L1", "w2_audio": "a_L2", "w2_visual": "v_L1"}
    official |= {"w3_visual": "v_fc", "w3_audio": "a_fc"}
    for name, dense in psp.projections.items():
        yield from linear_assignments(dense, f"psp.{official[name]}")
    yield same_assignment(psp.layer_norm.gamma, "psp.layer_norm.weight")
    yield same_assignment(psp.layer_norm.beta, "psp.layer_norm.bias")
    yield from linear_assignments(model.get_layer("classifier_hidden"), "L1")
    yield from linear_assignments(model.get_layer("classifier_output"), "L2")
    if setting == "fully":
        for index in (1, 2):
            yield from linear_assignments(
                model.get_layer(f"audio_projection_{index}"), f"fa.{index - 1}"
            )
            yield from linear_assignments(
                model.get_layer(f"visual_projection_{index}"), f"fv.{index - 1}"
            )
    else:
        yield from linear_assignments(model.get_layer("visual_projection"), "linear_v")
        if any(layer.name == "weighting_branch" for layer in model.layers):
            yield from linear_assignments(model.get_layer("weighting_branch").projection, "W3")


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


def official_model(
    state_dict: Mapping[str, np.ndarray], config: PSPConfig, with_internals: bool = False
) -> keras.Model:
    """The network for ``config``'s setting with the official parameters loaded."""
    # Imported here, not at the top: the command line quiets TensorFlow before it loads.
    from ave_tf.models import model_for_config

    setting = setting_of(config)
    model = model_for_config(config, with_internals)
    load_official_weights(model, state_dict, setting)
    return model


def read_checkpoint(path: str | os.PathLike) -> torch_checkpoint.Checkpoint:
    """The official parameters in ``path``, not read yet: a ``torch.save`` file (any name but
    ``*.npz``; see ``ave_tf.torch_checkpoint``) or an ``.npz``, keys without a ``module.``
    prefix.

    Raises:
        UsageError: the file cannot be read; the message starts with its path.
    """
    if pathlib.Path(path).suffix == ".npz":
        checkpoint = _read_npz(pathlib.Path(path))
    else:
        checkpoint = torch_checkpoint.read_checkpoint(path)
    keys = list(checkpoint.tensors)
    if keys and all(key.startswith(DATA_PARALLEL_PREFIX) for key in keys):
        tensors = {
            key.removeprefix(DATA_PARALLEL_PREFIX): value
            for key, value in checkpoint.tensors.items()
        }
        checkpoint = dataclasses.replace(checkpoint, tensors=tensors)
    return checkpoint


def _read_npz(path: pathlib.Path) -> torch_checkpoint.Checkpoint:
    """An ``.npz`` state dict: each member's name, shape and dtype from its ``.npy`` header;
    its data is read by ``StoredTensor.read``, as many bytes as the header's shape holds."""
    tensors = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    raise ValueError(f"member {torch_checkpoint.shown(member)} is not an .npy")
                with archive.open(member) as file:
                    version = np.lib.format.read_magic(file)
                    if version not in ((1, 0), (2, 0)):
                        raise ValueError(f"{member}: .npy format version {version}")
                    header = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
                    shape, _, dtype = header(file)
                if dtype.hasobject:
                    raise ValueError(f"{member} holds Python objects")
                name = member.removesuffix(".npy")
                tensors[name] = torch_checkpoint.StoredTensor(
                    path, name, shape, dtype, functools.partial(_read_npy, path, member)
                )
    except Exception as error:  # whatever a damaged archive makes zipfile or numpy raise
        message = torch_checkpoint.shown(str(error))
        raise StateDictError(
            f"{path}: cannot read an .npz state dict ({type(error).__name__}: {message})"
        ) from error
    return torch_checkpoint.Checkpoint(tensors, "npz", "a state_dict")


def _read_npy(path: pathlib.Path, member: str) -> np.ndarray:
    """Member ``member`` of the ``.npz`` ``path`` (its header's shape bounds what is read)."""
    with zipfile.ZipFile(path) as archive, archive.open(member) as file:
        return np.ascontiguousarray(np.lib.format.read_array(file, allow_pickle=False))


def _setting_of_keys(keys) -> str | None:
    """The setting whose official network has keys only it has, or None."""
    if "fa.0.weight" in keys:
        return "fully"
    if "W3.weight" in keys:
        return "weakly"
    return None


def save_atomically(model: keras.Model, path: str | os.PathLike):
    """Saves ``model`` to a ``.keras`` file via a temporary file and a rename."""
    with atomic_path(_keras_path(path), suffix=".keras") as temporary:
        model.save(temporary)


def _keras_path(path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    if path.suffix != ".keras":
        raise UsageError(f"the output must end in .keras; got {path}")
    return path


def main(argv):
    arguments = argv[1:]
    if len(arguments) != 2:
        raise UsageError(
            "expected two arguments, CHECKPOINT and OUT.keras; usage: python -m ave_tf.convert "
            "[--model {psp,avel}] --setting {fully,weakly} PSP_fully.pt psp_fully.keras"
        )
    checkpoint_path, output_path = arguments
    _keras_path(output_path)
    if flags.FLAGS.model == "avel":
        if flags.FLAGS.tau is not None:
            raise UsageError("--tau does not apply to --model avel (AVEL has no PSP)")
        _convert_att_net(checkpoint_path, output_path, flags.FLAGS.setting)
        return
    setting = flags.FLAGS.setting
    config = FullySupervisedConfig() if setting == "fully" else WeaklySupervisedConfig()
    if flags.FLAGS.tau is not None:
        try:
            config = config.replace(tau=parse_tau(flags.FLAGS.tau))
        except ValueError as error:
            raise UsageError(f"--tau: {error}") from error
    checkpoint = read_checkpoint(checkpoint_path)
    form = "npz" if checkpoint.serialization == "npz" else f"PyTorch {checkpoint.serialization}"
    print(
        f"read {len(checkpoint.tensors)} tensors from {checkpoint_path} ({form} format: "
        f"{checkpoint.contents})"
    )
    try:
        model = official_model(checkpoint.tensors, config)
    except StateDictError as error:
        found = _setting_of_keys(checkpoint.tensors)
        hint = (
            f" (--setting {found}? it has {found}-only keys)"
            if found not in (None, setting)
            else ""
        )
        raise StateDictError(f"{checkpoint_path}: {error}{hint}") from error
    save_atomically(model, output_path)
    print(f"wrote {output_path}: the official {setting} network, tau={config.tau}")


def _convert_att_net(checkpoint_path: str, output_path: str, setting: str) -> None:
    """``--model avel``: an AVE-ECCV18 ``att_Net`` checkpoint -> the AVEL ``.keras`` file."""
    from ave_tf.avel_weights import att_net_model  # Keras: after the arguments are checked

    checkpoint = read_checkpoint(checkpoint_path)
    form = "npz" if checkpoint.serialization == "npz" else f"PyTorch {checkpoint.serialization}"
    print(
        f"read {len(checkpoint.tensors)} tensors from {checkpoint_path} ({form} format: "
        f"{checkpoint.contents})"
    )
    if setting == "fully":
        config = AVELFullySupervisedConfig()
    else:
        config = AVELWeaklySupervisedConfig(weighting_branch="W3.weight" in checkpoint.tensors)
    try:
        model = att_net_model(checkpoint.tensors, config)
    except UsageError as error:  # ave_tf.convert's StateDictError: this file may be __main__.
        hint = (
            " (a PSP checkpoint? drop --model avel)" if _setting_of_keys(checkpoint.tensors) else ""
        )
        raise StateDictError(f"{checkpoint_path}: {error}{hint}") from error
    save_atomically(model, output_path)
    branch = ", with the weighting branch" if getattr(config, "weighting_branch", False) else ""
    print(f"wrote {output_path}: the AVEL (att_Net) {setting} network{branch}")


def _define_flags():
    flags.DEFINE_enum(
        "model",
        "psp",
        ["psp", "avel"],
        "Which network the checkpoint holds: the official PSP, or AVE-ECCV18's att_Net (AVEL).",
    )

    flags.DEFINE_enum(
        "setting",
        None,
        ["fully", "weakly"],
        "Which official network the checkpoint holds (PSP_fully.pt: fully, PSP_weakly.pt: "
        "weakly; att_Net: the script it was trained with).",
    )
    flags.DEFINE_string(
        "tau",
        None,
        "PSP threshold to build with (number, 'inf', '-inf' or 'off'); default: "
        "the official value of the setting (0.099 fully, 0.095 weakly).",
    )
    flags.mark_flag_as_required("setting")


if __name__ == "__main__":
    from ave_tf import cli  # first: it quiets TensorFlow's start-up before anything loads it

    _define_flags()
    cli.run(main)
