"""Loads the parameters of AVE-ECCV18's ``att_Net`` (the AVEL baseline) into ave-tf's AVEL.

``att_Net`` (``models.py`` fully, ``models_weakly.py`` weakly supervised; the same parameters)
has the ``state_dict`` keys, PyTorch layouts (a Linear weight is (out, in); LSTM gates i, f, g,
o with two biases):

- ``affine_video.weight`` (512, 512), ``.bias`` (512); ``affine_audio.weight`` (512, 128),
  ``.bias`` (512); ``affine_v.weight``, ``affine_g.weight`` (49, 512); ``affine_h.weight``
  (1, 49): AVGA;
- ``lstm_audio.{weight_ih_l0 (512, 128), weight_hh_l0 (512, 128), bias_ih_l0, bias_hh_l0
  (512)}``, the same with ``_reverse``; ``lstm_video.*`` alike with ``weight_ih_l0``
  (512, 512);
- ``L1.weight`` (64, 512), ``L1.bias`` (64); ``L2.weight`` (29, 64), ``L2.bias`` (29).

A weakly supervised AVEL with PSP's weighting branch also needs ``W3.weight`` (1, 29), the
branch's name in PSP's ``weakly_model.py`` (``att_Net`` has no such branch). The official
scripts save whole modules (``torch.save(net_model, ...)``); save ``model.state_dict()`` as
``.npz`` (see ``ave_tf.convert``) to convert one.
"""

from collections.abc import Iterator, Mapping

import keras
import numpy as np

from ave_tf.config import AVELConfig
from ave_tf.models import model_for_config
from ave_tf.state_dicts import (
    Assignment,
    assign_state_dict,
    linear_assignments,
    lstm_assignments,
)


def _assignments(model: keras.Model) -> Iterator[Assignment]:
    """Every Keras variable of an AVEL ``model`` with the ``att_Net`` key(s) it comes from."""
    avga = model.get_layer("avga")
    for name in ("affine_video", "affine_audio", "affine_v", "affine_g", "affine_h"):
        yield from linear_assignments(getattr(avga, name), name)
    yield from lstm_assignments(model.get_layer("audio_lstm"), "lstm_audio")
    yield from lstm_assignments(model.get_layer("visual_lstm"), "lstm_video")
    yield from linear_assignments(model.get_layer("classifier_hidden"), "L1")
    yield from linear_assignments(model.get_layer("classifier_output"), "L2")
    if any(layer.name == "weighting_branch" for layer in model.layers):
        yield from linear_assignments(model.get_layer("weighting_branch").projection, "W3")


def load_att_net_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray]) -> None:
    """Assigns an ``att_Net`` ``state_dict`` to a network built by ``ave_tf.models`` for an
    AVEL config.

    Raises:
        ave_tf.state_dicts.StateDictError: a needed key is missing, a key is unknown, or a value
            has the wrong shape or is not finite (the message names the key and shapes).
    """
    assign_state_dict(list(_assignments(model)), state_dict, set(), "AVEL (att_Net)")


def att_net_model(
    state_dict: Mapping[str, np.ndarray], config: AVELConfig, with_internals: bool = False
) -> keras.Model:
    """The AVEL network for ``config`` with ``att_Net``'s parameters loaded."""
    if not isinstance(config, AVELConfig):
        raise TypeError(f"config must be an AVEL config; got {type(config).__name__}")
    model = model_for_config(config, with_internals)
    load_att_net_weights(model, state_dict)
    return model
