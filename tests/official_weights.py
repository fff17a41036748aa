"""Random stand-ins for the official PSP checkpoints, in PyTorch ``state_dict`` layout.

Written from ``shared/docs/reference.md`` §6 only. ``random_state_dict`` returns every key the
official ``PSP_fully.pt`` / ``PSP_weakly.pt`` hold (the "present but unused" ones included), with
the PyTorch shapes: a Linear weight is ``(out, in)``; an LSTM has ``weight_ih_l0`` ``(4h, in)``,
``weight_hh_l0`` ``(4h, h)``, ``bias_ih_l0`` and ``bias_hh_l0`` ``(4h,)`` with gates ordered
input, forget, cell, output, and the same four with ``_reverse`` for the backward direction.

The values follow the official initialisation (Glorot uniform where the official code uses it,
PyTorch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` elsewhere), with every bias and the
LayerNorm affine made non-trivial so a wrong layout cannot pass unnoticed. ``random_features``
gives non-negative AVE-like inputs; with both, AVGA and the LSTMs are not saturated and PSP's
row-normalised similarities spread around the official tau (~0.1).
"""

import os
import tempfile

import numpy as np

NUM_SEGMENTS = 10
AUDIO_DIM = 128
VISUAL_SHAPE = (7, 7, 512)
LSTM_UNITS = 128

_LSTM_DIRECTIONS = ("", "_reverse")


def _common_shapes(lstm_input_dim: int) -> dict[str, tuple[int, ...]]:
    """Keys shared by both settings (reference.md §6), PyTorch shapes."""
    h = LSTM_UNITS
    shapes = {
        "attention.affine_video.weight": (512, 512),
        "attention.affine_video.bias": (512,),
        "attention.affine_audio.weight": (512, 128),
        "attention.affine_audio.bias": (512,),
        "attention.affine_v.weight": (49, 512),
        "attention.affine_g.weight": (49, 512),
        "attention.affine_h.weight": (1, 49),
    }
    for lstm in ("lstm_audio", "lstm_video"):
        for direction in _LSTM_DIRECTIONS:
            prefix = f"lstm_a_v.{lstm}."
            shapes[f"{prefix}weight_ih_l0{direction}"] = (4 * h, lstm_input_dim)
            shapes[f"{prefix}weight_hh_l0{direction}"] = (4 * h, h)
            shapes[f"{prefix}bias_ih_l0{direction}"] = (4 * h,)
            shapes[f"{prefix}bias_hh_l0{direction}"] = (4 * h,)
    for name in ("v_L1", "v_L2", "a_L1", "a_L2"):
        shapes[f"psp.{name}.weight"] = (256, 256)
    shapes["psp.layer_norm.weight"] = (256,)
    shapes["psp.layer_norm.bias"] = (256,)
    shapes["L1.weight"] = (64, 256)
    shapes["L2.weight"] = (29, 64)
    return shapes


def state_dict_shapes(setting: str) -> dict[str, tuple[int, ...]]:
    """Every key of the official ``state_dict`` of ``setting`` ("fully" or "weakly") -> shape."""
    shapes = _common_shapes(lstm_input_dim=128)
    if setting == "fully":
        shapes.update(
            {
                "fa.0.weight": (256, 128),
                "fa.1.weight": (128, 256),
                "fv.0.weight": (256, 512),
                "fv.1.weight": (128, 256),
                "psp.v_fc.weight": (256, 256),
                "psp.a_fc.weight": (256, 256),
                # Present in the checkpoint, unused by the forward pass.
                "linear_v.weight": (128, 512),
                "linear_v.bias": (128,),
                "v_classify.L1.weight": (64, 256),
                "v_classify.L2.weight": (28, 64),
                "a_classify.L1.weight": (64, 256),
                "a_classify.L2.weight": (28, 64),
                "L3.weight": (64, 256),
                "L3.bias": (64,),
                "L4.weight": (2, 64),
                "L4.bias": (2,),
            }
        )
    elif setting == "weakly":
        shapes.update(
            {
                "linear_v.weight": (128, 512),
                "linear_v.bias": (128,),
                "W3.weight": (1, 29),
                # Present in the checkpoint, unused by the forward pass.
                "temperature": (1, 29),
                "W1.weight": (1, 256),
                "W2.weight": (1, 64),
            }
        )
    else:
        raise ValueError(f"setting must be 'fully' or 'weakly'; got {setting!r}")
    return shapes


def unused_keys(setting: str) -> tuple[str, ...]:
    """Keys of the official checkpoint that the forward pass never reads."""
    if setting == "fully":
        return (
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
        )
    return ("temperature", "W1.weight", "W2.weight")


# Parameters the official code initialises with Glorot (Xavier) uniform (reference.md §4).
_GLOROT_PREFIXES = ("attention.", "psp.v_", "psp.a_", "L1.", "L2.")
# Gains over PyTorch's default bound for the LSTMs and the fa / fv / linear_v projections: with
# the bare default the LSTM outputs stay within +-0.2 and PSP's similarities are nearly uniform;
# trained weights are larger, and these gains give outputs spread over most of (-1, 1).
_LSTM_GAIN = 3.0
_PROJECTION_GAIN = 3.0


def random_state_dict(setting: str, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """A complete random official ``state_dict`` (float32 NumPy arrays, PyTorch layouts).

    Args:
        setting: "fully" or "weakly".
        seed: seed of the generator; the same seed gives the same arrays.
        scale: multiplies every weight matrix (not biases / LayerNorm), e.g. to push
            activations towards saturation.

    Returns:
        ``{key: array}`` with exactly the keys and shapes of ``state_dict_shapes(setting)``.
    """
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in state_dict_shapes(setting).items():
        if key == "psp.layer_norm.weight":
            value = 1.0 + 0.2 * rng.standard_normal(shape)
        elif key == "psp.layer_norm.bias" or key == "temperature":
            value = 0.2 * rng.standard_normal(shape)
        elif len(shape) == 1:  # Linear and LSTM biases: PyTorch default U(+-1/sqrt(fan_in)).
            fan_in = LSTM_UNITS if key.startswith("lstm_a_v.") else _fan_in_of_bias(key, setting)
            bound = 1.0 / np.sqrt(fan_in)
            value = rng.uniform(-bound, bound, shape)
        else:
            fan_out, fan_in = shape
            if key.startswith(_GLOROT_PREFIXES):
                bound = np.sqrt(6.0 / (fan_in + fan_out))
            elif key.startswith("lstm_a_v."):
                bound = _LSTM_GAIN / np.sqrt(LSTM_UNITS)
            else:
                bound = _PROJECTION_GAIN / np.sqrt(fan_in)
            value = scale * rng.uniform(-bound, bound, shape)
        state[key] = np.asarray(value, dtype=np.float32)
    return state


def _fan_in_of_bias(key: str, setting: str) -> int:
    weight_key = key[: -len("bias")] + "weight"
    return state_dict_shapes(setting)[weight_key][1]


def random_features(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Non-negative AVE-like inputs: VGGish-like audio and sparse VGG19 pool5-like maps.

    Returns:
        ``{"audio": (batch, 10, 128), "visual": (batch, 10, 7, 7, 512)}``, float32.
    """
    rng = np.random.default_rng(seed)
    audio = np.maximum(rng.standard_normal((batch, NUM_SEGMENTS, AUDIO_DIM)), 0.0)
    # Loud and near-silent seconds, as around an event's boundaries.
    audio *= rng.uniform(0.05, 2.0, (batch, NUM_SEGMENTS, 1))
    visual = np.maximum(rng.standard_normal((batch, NUM_SEGMENTS, *VISUAL_SHAPE)) - 0.5, 0.0)
    # A per-video, per-cell gain so AVGA has salient cells to attend to.
    visual *= rng.uniform(0.2, 3.0, (batch, NUM_SEGMENTS, 7, 7, 1))
    return {"audio": audio.astype(np.float32), "visual": visual.astype(np.float32)}


def save_state_dict(state: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Writes ``state`` to an ``.npz`` (keys = official names) via a temp file + rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **state)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def memoryless_audio_lstm(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A copy of ``state`` whose audio Bi-LSTM output at t depends on the audio at t only.

    Both directions get ``weight_hh = 0`` and a forget-gate bias of -1000 (sigmoid is exactly 0
    in float32 and float64), so no state crosses segments; the cell-gate biases cancel exactly
    (``bias_hh = -bias_ih``), so a silent (all-zero) segment gives an exactly zero output. Used
    to build exact ties at the PSP threshold (see ``tie_features``).
    """
    state = dict(state)
    h = LSTM_UNITS
    forget, cell = slice(h, 2 * h), slice(2 * h, 3 * h)
    for direction in _LSTM_DIRECTIONS:
        prefix = "lstm_a_v.lstm_audio."
        state[f"{prefix}weight_hh_l0{direction}"] = np.zeros_like(
            state[f"{prefix}weight_hh_l0{direction}"]
        )
        bias_ih = state[f"{prefix}bias_ih_l0{direction}"].copy()
        bias_hh = state[f"{prefix}bias_hh_l0{direction}"].copy()
        bias_ih[forget] = -1000.0
        bias_hh[cell] = -bias_ih[cell]
        state[f"{prefix}bias_ih_l0{direction}"] = bias_ih
        state[f"{prefix}bias_hh_l0{direction}"] = bias_hh
    # Larger audio-side PSP similarities, so that the single positive entry s of a row makes
    # s + 1e-8 round to s in float32 (s >= 0.25) and the row normalises to exactly 1.
    state["psp.a_L1.weight"] = state["psp.a_L1.weight"] * np.float32(4.0)
    return state


def tie_features(seed: int = 0) -> dict[str, np.ndarray]:
    """Three videos whose row-normalised similarities hit 1.0 and 0.5 exactly (with
    ``memoryless_audio_lstm`` weights, in float32 as the official model computes them).

    Video 0: one loud audio segment (t=3), the rest silent: every nonzero row of ``beta_va``
    is one entry s / (s + 1e-8) == 1.0 exactly. Video 1: two identical loud segments (t=2, 7):
    rows are two entries s / (2 s + 1e-8) == 0.5 exactly. Video 2: ordinary random audio.
    Silent segments give exactly zero similarities, i.e. ties at tau = 0.
    """
    features = random_features(3, seed)
    audio = features["audio"]
    loud = np.abs(audio[2, 0]) + 0.5
    audio[0] = 0.0
    audio[0, 3] = loud
    audio[1] = 0.0
    audio[1, 2] = loud
    audio[1, 7] = loud
    return {"audio": audio, "visual": features["visual"]}


class KeyRecorder(dict):
    """A state_dict that remembers which keys were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)
