"""AVE-ECCV18's ``att_Net`` (the AVEL baseline) in plain NumPy: the spec ave-tf's AVEL must meet.

Written from ``att_Net``'s forward pass (YapengTian/AVE-ECCV18 ``models.py`` and
``models_weakly.py``), independently of ``ave_tf``, on an ``att_Net`` ``state_dict`` (PyTorch
names and layouts, see ``tests/avel_official_weights.py``). The PyTorch building blocks (Linear,
bidirectional LSTM, AVGA with the position broadcast ``att_Net`` computes, cosine similarity)
are those of ``tests/numpy_reference.py``. Arithmetic in float64 by default.

Per segment t: ``c_t = AVGA(audio_t, visual_t)`` (512); ``h^a = BiLSTM_a(audio)``,
``h^v = BiLSTM_v(c)`` (10, 256 each); ``f = relu([h^a, h^v])`` (audio first, 512);
``scores = L2(relu(L1(f)))`` (10, 29), both Linear layers with bias.
Fully: ``softmax(scores)`` per segment; AVPS similarity ``cos(h^v_t, h^a_t)``.
Weakly: optionally ``scores * sigmoid([relu](scores W3^T))`` (PSP's weighting branch), then
``softmax(max_t scores)`` (``att_Net``) or ``softmax(mean_t scores)`` (PSP).

Usage::

    out = avel_forward(state, audio, visual, "fully")    # out["segment_logits"]: (B, 10, 29)
    out = avel_forward(state, audio, visual, "weakly", weighting_branch=True, pooling="mean")
"""

from collections.abc import Mapping

import numpy as np

from tests import numpy_reference as ref

AVGA_KEYS = ("affine_video", "affine_audio", "affine_v", "affine_g", "affine_h")


def avga(visual, audio, state, dtype):
    """``att_Net``'s attention: AVGA on the raw audio (B, T, 128) and maps (B, T, 7, 7, 512)."""
    prefixed = {f"attention.{key}": state[key] for key in state if key.split(".")[0] in AVGA_KEYS}
    return ref.audio_guided_visual_attention(visual, audio, prefixed, dtype)


def avel_forward(
    state: Mapping[str, np.ndarray],
    audio,
    visual,
    setting: str,
    weighting_branch: bool = False,
    weighting_relu: bool = True,
    pooling: str = "max",
    dtype=np.float64,
) -> dict[str, np.ndarray]:
    """``att_Net`` in eval mode (there is no dropout, so eval = train).

    Args:
        state: ``att_Net`` ``state_dict`` (plus ``W3.weight`` (1, 29) for the weighting branch).
        audio: (B, 10, 128); visual: (B, 10, 7, 7, 512).
        setting: "fully" or "weakly".
        weighting_branch, weighting_relu, pooling: weakly only (see the module docstring).

    Returns:
        ``segment_logits``, ``segment_probabilities`` (B, 10, 29); fully: ``av_similarity``
        (B, 10); weakly: ``video_probabilities`` (B, 29); and ``visual_attention`` (B, 10, 49),
        ``visual_attended`` (B, 10, 512), ``audio_lstm``, ``visual_lstm`` (B, 10, 256).
    """
    audio = np.asarray(audio, dtype)
    visual = np.asarray(visual, dtype)
    attended, alpha = avga(visual, audio, state, dtype)
    audio_lstm = ref.bidirectional_lstm(audio, state, "lstm_audio", dtype)
    visual_lstm = ref.bidirectional_lstm(attended, state, "lstm_video", dtype)
    fused = ref.relu(np.concatenate([audio_lstm, visual_lstm], axis=-1))
    hidden = ref.relu(ref.linear(fused, state, "L1", dtype, bias=True))
    scores = ref.linear(hidden, state, "L2", dtype, bias=True)
    outputs = {
        "visual_attention": alpha,
        "visual_attended": attended,
        "audio_lstm": audio_lstm,
        "visual_lstm": visual_lstm,
    }
    if setting == "fully":
        outputs["av_similarity"] = ref.cosine_similarity(visual_lstm, audio_lstm)
    elif setting == "weakly":
        if weighting_branch:
            z = ref.linear(scores, state, "W3", dtype)
            scores = scores * ref.sigmoid(ref.relu(z) if weighting_relu else z)
        video = scores.max(axis=1) if pooling == "max" else scores.mean(axis=1)
        outputs["video_probabilities"] = ref.softmax(video)
    else:
        raise ValueError(f"setting must be 'fully' or 'weakly'; got {setting!r}")
    outputs["segment_logits"] = scores
    outputs["segment_probabilities"] = ref.softmax(scores)
    return outputs
