"""The official PSP forward pass (eval mode) in plain NumPy: the spec the Keras models must meet.

Written from ``shared/docs/reference.md`` §2, §3 and §6 only, independently of ``ave_tf``.
It reads an official ``state_dict`` (PyTorch names and layouts, see
``tests/official_weights.py``) and follows PyTorch semantics: ``Linear(x) = x @ W.T + b``;
``nn.LSTM`` (bidirectional, zero initial state, gates i, f, g, o, bias = ``bias_ih +
bias_hh``, output ``[forward, backward]``); ``nn.LayerNorm`` (biased variance, eps 1e-6);
``F.cosine_similarity`` (eps 1e-8, each norm clamped). Dropout is the identity (eval mode)
unless a ``dropout`` function is passed: it is then applied at the official dropout positions
(PSP only, after the ReLU of ``psp.v_L1``, ``psp.v_L2``, ``psp.a_L1``, ``psp.a_L2`` and, fully
supervised, ``psp.v_fc``, ``psp.a_fc``), e.g. to replay the masks a training-mode run drew.

Arithmetic is done in ``dtype`` (default float64, so the reference's own rounding is negligible
next to the float32 model under test; pass ``np.float32`` to mimic the official float32 run, e.g.
to see exact ties at the threshold).

Usage::

    out = fully_forward(state, audio, visual, tau=0.099)   # out["segment_logits"]: (B, 10, 29)
    out = weakly_forward(state, audio, visual, tau=0.095)  # out["video_probabilities"]: (B, 29)
    out = fully_forward(state, audio, visual, tau=0.099, dropout=apply_masks)  # training mode
"""

from collections.abc import Callable, Mapping

import numpy as np

L1_EPSILON = 1e-8
LAYER_NORM_EPSILON = 1e-6
COSINE_EPSILON = 1e-8

Dropout = Callable[[str, np.ndarray], np.ndarray]
"""``dropout(name, x)``: the dropped-out ``x`` at the position after ``relu(name(...))``, where
``name`` is the official layer name (``"psp.v_L1"``); ``x`` is (B, T, 256)."""


def no_dropout(name: str, x: np.ndarray) -> np.ndarray:
    """Eval mode: dropout is the identity."""
    del name
    return x


def linear(x, state, name, dtype, bias=False):
    """PyTorch ``nn.Linear``: ``x @ W.T (+ b)`` with ``W`` of shape (out, in)."""
    y = x @ np.asarray(state[f"{name}.weight"], dtype).T
    if bias:
        y = y + np.asarray(state[f"{name}.bias"], dtype)
    return y


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    """Logistic function without overflow: exactly 0 / 1 far in the tails."""
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def lstm_direction(x, w_ih, w_hh, b_ih, b_hh):
    """One direction of ``nn.LSTM`` over (B, T, in) -> hidden states (B, T, h), zero init."""
    hidden = w_hh.shape[1]
    h = np.zeros((x.shape[0], hidden), x.dtype)
    c = np.zeros((x.shape[0], hidden), x.dtype)
    outputs = []
    for t in range(x.shape[1]):
        gates = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(gates, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def bidirectional_lstm(x, state, name, dtype):
    """``nn.LSTM(bidirectional=True, batch_first=True)``: (B, T, in) -> (B, T, 2h)."""

    def params(suffix):
        return [
            np.asarray(state[f"{name}.{p}_l0{suffix}"], dtype)
            for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]

    forward = lstm_direction(x, *params(""))
    backward = lstm_direction(x[:, ::-1], *params("_reverse"))[:, ::-1]
    return np.concatenate([forward, backward], axis=-1)


def audio_guided_visual_attention(visual, audio, state, dtype):
    """AVGA with the official broadcast. visual (B, T, 7, 7, 512), audio (B, T, 128).

    Returns (attended (B, T, 512), alpha (B, T, 49)).
    """
    batch, segments = visual.shape[:2]
    cells = visual.reshape(batch, segments, 49, 512)
    v = relu(linear(cells, state, "attention.affine_video", dtype, bias=True))  # (B,T,49,512)
    g = relu(linear(audio, state, "attention.affine_audio", dtype, bias=True))  # (B,T,512)
    # content[p, k] = (W_v v_p)[k] + (W_g g)[p]: the audio 49-vector indexed by position p.
    content = linear(v, state, "attention.affine_v", dtype)  # (B,T,49,49)
    content = content + linear(g, state, "attention.affine_g", dtype)[..., :, None]
    z = linear(np.tanh(content), state, "attention.affine_h", dtype)[..., 0]  # (B,T,49)
    alpha = softmax(z, axis=-1)
    attended = np.einsum("btp,btpc->btc", alpha, cells)
    return attended, alpha


def row_l1_normalize(x):
    return x / (x.sum(axis=-1, keepdims=True) + L1_EPSILON)


def layer_norm(x, state, dtype):
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    normed = (x - mean) / np.sqrt(variance + LAYER_NORM_EPSILON)
    weight = np.asarray(state["psp.layer_norm.weight"], dtype)
    return normed * weight + np.asarray(state["psp.layer_norm.bias"], dtype)


def positive_sample_propagation(
    visual, audio, state, tau, renormalize, dtype, dropout: Dropout = no_dropout
):
    """PSP up to (not including) the output projection / LayerNorm.

    visual, audio: (B, T, 256) Bi-LSTM outputs. Returns a dict with ``v_psp``, ``a_psp``
    (B, T, 256) = residual + propagated, and ``beta_va``, ``beta_av``, ``gamma_va``,
    ``gamma_av`` (B, T, T).
    """

    def branch(x, name):
        return dropout(name, relu(linear(x, state, name, dtype)))

    v1 = branch(visual, "psp.v_L1")
    v2 = branch(visual, "psp.v_L2")
    a1 = branch(audio, "psp.a_L1")
    a2 = branch(audio, "psp.a_L2")
    scale = np.asarray(np.sqrt(256.0), dtype)
    similarity = relu(v2 @ np.swapaxes(a1, 1, 2) / scale)  # rows: visual t, cols: audio t'
    beta_va = row_l1_normalize(similarity)
    beta_av = row_l1_normalize(np.swapaxes(similarity, 1, 2))
    gamma_va = beta_va * (beta_va > tau)
    gamma_av = beta_av * (beta_av > tau)
    if renormalize:
        gamma_va = row_l1_normalize(gamma_va)
        gamma_av = row_l1_normalize(gamma_av)
    return {
        "v_psp": visual + gamma_va @ a2,
        "a_psp": audio + gamma_av @ v1,
        "beta_va": beta_va,
        "beta_av": beta_av,
        "gamma_va": gamma_va,
        "gamma_av": gamma_av,
    }


def classifier(fused, state, dtype):
    """``L2(relu(L1(f)))``: (B, T, 256) -> (B, T, 29)."""
    return linear(relu(linear(fused, state, "L1", dtype)), state, "L2", dtype)


def cosine_similarity(x1, x2):
    """``F.cosine_similarity(x1, x2, dim=-1, eps=1e-8)`` (each norm clamped to eps)."""
    n1 = np.maximum(np.linalg.norm(x1, axis=-1), COSINE_EPSILON)
    n2 = np.maximum(np.linalg.norm(x2, axis=-1), COSINE_EPSILON)
    return (x1 * x2).sum(axis=-1) / (n1 * n2)


def _internals(psp, alpha, attended, audio_lstm, visual_lstm):
    return {
        "visual_attention": alpha,
        "visual_attended": attended,
        "audio_lstm": audio_lstm,
        "visual_lstm": visual_lstm,
        "beta_va": psp["beta_va"],
        "beta_av": psp["beta_av"],
        "gamma_va": psp["gamma_va"],
        "gamma_av": psp["gamma_av"],
    }


def fully_forward(
    state: Mapping[str, np.ndarray],
    audio,
    visual,
    tau: float,
    dtype=np.float64,
    dropout: Dropout = no_dropout,
) -> dict[str, np.ndarray]:
    """The official fully supervised network (reference.md §2), eval mode by default.

    Args:
        state: official ``state_dict`` (``psp.v_fc.weight``, ``fa.0.weight``, ...).
        audio: (B, 10, 128); visual: (B, 10, 7, 7, 512).
        tau: PSP threshold (entries strictly greater are kept; +-inf allowed).
        dropout: applied at the six official dropout positions (default: identity).

    Returns:
        ``segment_logits`` (B, 10, 29), ``segment_probabilities`` (B, 10, 29),
        ``av_similarity`` (B, 10), ``gamma_va``, ``gamma_av``, ``beta_va``, ``beta_av``
        (B, 10, 10), ``visual_attention`` (B, 10, 49), ``visual_attended`` (B, 10, 512),
        ``audio_lstm``, ``visual_lstm`` (B, 10, 256).
    """
    audio = np.asarray(audio, dtype)
    visual = np.asarray(visual, dtype)
    a = linear(linear(audio, state, "fa.0", dtype), state, "fa.1", dtype)  # (B,T,128)
    attended, alpha = audio_guided_visual_attention(visual, a, state, dtype)
    v = linear(linear(attended, state, "fv.0", dtype), state, "fv.1", dtype)  # (B,T,128)
    audio_lstm = bidirectional_lstm(a, state, "lstm_a_v.lstm_audio", dtype)
    visual_lstm = bidirectional_lstm(v, state, "lstm_a_v.lstm_video", dtype)
    psp = positive_sample_propagation(visual_lstm, audio_lstm, state, tau, True, dtype, dropout)
    v_psp = dropout("psp.v_fc", relu(linear(psp["v_psp"], state, "psp.v_fc", dtype)))
    a_psp = dropout("psp.a_fc", relu(linear(psp["a_psp"], state, "psp.a_fc", dtype)))
    v_psp = layer_norm(v_psp, state, dtype)
    a_psp = layer_norm(a_psp, state, dtype)
    logits = classifier((v_psp + a_psp) / 2, state, dtype)
    return {
        "segment_logits": logits,
        "segment_probabilities": softmax(logits),
        "av_similarity": cosine_similarity(v_psp, a_psp),
        **_internals(psp, alpha, attended, audio_lstm, visual_lstm),
    }


def weakly_forward(
    state: Mapping[str, np.ndarray],
    audio,
    visual,
    tau: float,
    dtype=np.float64,
    dropout: Dropout = no_dropout,
) -> dict[str, np.ndarray]:
    """The official weakly supervised network (reference.md §3), eval mode by default.

    Args: as ``fully_forward`` (with the weakly ``state_dict``: ``linear_v``, ``W3``); the
    weakly supervised network has four dropout positions (no ``psp.*_fc``).

    Returns:
        ``segment_logits`` (B, 10, 29) = scores after the weighting branch,
        ``segment_probabilities`` (softmax of those), ``video_probabilities`` (B, 29),
        ``segment_weights`` (B, 10, 1), and the internals listed in ``fully_forward``.
    """
    audio = np.asarray(audio, dtype)
    visual = np.asarray(visual, dtype)
    attended, alpha = audio_guided_visual_attention(visual, audio, state, dtype)
    v = linear(attended, state, "linear_v", dtype, bias=True)  # (B,T,128)
    audio_lstm = bidirectional_lstm(audio, state, "lstm_a_v.lstm_audio", dtype)
    visual_lstm = bidirectional_lstm(v, state, "lstm_a_v.lstm_video", dtype)
    psp = positive_sample_propagation(visual_lstm, audio_lstm, state, tau, False, dtype, dropout)
    v_psp = layer_norm(psp["v_psp"], state, dtype)
    a_psp = layer_norm(psp["a_psp"], state, dtype)
    scores = classifier((v_psp + a_psp) / 2, state, dtype)
    weights = sigmoid(relu(linear(scores, state, "W3", dtype)))  # (B,T,1), each >= 0.5
    scores = scores * weights
    return {
        "segment_logits": scores,
        "segment_probabilities": softmax(scores),
        "video_probabilities": softmax(scores.mean(axis=1)),
        "segment_weights": weights,
        **_internals(psp, alpha, attended, audio_lstm, visual_lstm),
    }
