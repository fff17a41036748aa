"""Random stand-ins for AVE-ECCV18 ``att_Net`` checkpoints, in PyTorch ``state_dict`` layout.

Written from ``att_Net.__init__`` (``att_Net(128, 128, 512, 29)`` in ``supervised_main.py`` and
``weak_supervised_main.py``): ``nn.LSTM(128, 128)`` and ``nn.LSTM(512, 128)``, bidirectional;
``affine_audio = Linear(128, 512)``, ``affine_video = Linear(512, 512)`` with bias;
``affine_v``, ``affine_g = Linear(512, 49)``, ``affine_h = Linear(49, 1)`` without bias;
``L1 = Linear(512, 64)``, ``L2 = Linear(64, 29)`` with bias. Glorot uniform on every Linear
weight (``init_weights``), PyTorch's ``U(+-1/sqrt(fan))`` on biases and LSTMs; the LSTMs get a
gain (as in ``tests/official_weights.py``) so their outputs are not all near 0.
"""

import numpy as np

LSTM_UNITS = 128
_LSTM_GAIN = 3.0


def att_net_shapes(weighting_branch: bool = False) -> dict[str, tuple[int, ...]]:
    """Every key of an ``att_Net`` ``state_dict`` -> PyTorch shape (+ PSP's ``W3.weight``
    (1, 29) when ``weighting_branch``)."""
    h = LSTM_UNITS
    shapes = {
        "affine_audio.weight": (512, 128),
        "affine_audio.bias": (512,),
        "affine_video.weight": (512, 512),
        "affine_video.bias": (512,),
        "affine_v.weight": (49, 512),
        "affine_g.weight": (49, 512),
        "affine_h.weight": (1, 49),
        "L1.weight": (64, 4 * h),
        "L1.bias": (64,),
        "L2.weight": (29, 64),
        "L2.bias": (29,),
    }
    for lstm, input_dim in (("lstm_audio", 128), ("lstm_video", 512)):
        for suffix in ("", "_reverse"):
            shapes[f"{lstm}.weight_ih_l0{suffix}"] = (4 * h, input_dim)
            shapes[f"{lstm}.weight_hh_l0{suffix}"] = (4 * h, h)
            shapes[f"{lstm}.bias_ih_l0{suffix}"] = (4 * h,)
            shapes[f"{lstm}.bias_hh_l0{suffix}"] = (4 * h,)
    if weighting_branch:
        shapes["W3.weight"] = (1, 29)
    return shapes


def random_att_net_state(seed: int = 0, weighting_branch: bool = False) -> dict[str, np.ndarray]:
    """A complete random ``att_Net`` ``state_dict`` (float32, PyTorch layouts)."""
    rng = np.random.default_rng(seed)
    shapes = att_net_shapes(weighting_branch)
    state = {}
    for key, shape in shapes.items():
        if key.startswith("lstm_"):
            bound = (1.0 if len(shape) == 1 else _LSTM_GAIN) / np.sqrt(LSTM_UNITS)
        elif len(shape) == 1:
            bound = 1.0 / np.sqrt(shapes[key[: -len("bias")] + "weight"][1])
        else:
            fan_out, fan_in = shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
        state[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return state
