"""The AVE audio features of a clip: 10 VGGish embeddings of the 10 s from a start time.

The recipe of the released AVE features (``vggish_input.waveform_to_examples`` then VGGish's
``vggish/embedding``) on the span [start, start + 10) s:

1. the span is cut at the waveform's own rate, averaged to mono (mean of the channels) and
   resampled to 16 kHz with resampy's default filter (``kaiser_best``), in float64 as the
   official code does;
2. `log_mel.log_mel_examples`: 0.96 s examples, one every 0.96 s;
3. the first 10 examples go through VGGish: (10, 128), the raw embeddings.

Embedding k (k = 0..9) therefore covers [start + 0.96 k, start + 0.96 k + 0.975) s of the clip:
the 10 "one per second" AVE audio features drift 0.04 s per second ahead of the video's
seconds, and the last 0.385 s of the 10 s are never heard. Any span of at least 9.615 s gives
the same 10 embeddings as the full 10 s would: a clip of 9.98 s loses nothing; a span shorter
than 9.615 s is an error (no padding).
"""

import math

import keras
import numpy as np
import resampy

from ave_tf.ave import NUM_SEGMENTS
from ave_tf.errors import UsageError
from ave_tf.extraction.log_mel import SAMPLE_RATE, log_mel_examples, samples_for_examples

CLIP_SECONDS = 10.0
"""The span of a clip the AVE features describe."""


def audio_examples(waveform, sample_rate: float, start_seconds: float = 0.0) -> np.ndarray:
    """The 10 VGGish input examples of [start_seconds, start_seconds + 10) s of a waveform.

    Args:
        waveform: (samples,) or (samples, channels) float, values in [-1, 1].
        sample_rate: samples per second of ``waveform``, Hz.
        start_seconds: where the 10 s span starts in ``waveform``.

    Returns:
        (10, 96, 64) float32 log-mel examples.

    Raises:
        UsageError: a start before 0, a sample rate <= 0, or less than the 9.615 s of audio the
            10 examples need from ``start_seconds`` (the message says how much there is).
    """
    waveform = np.asarray(waveform)
    if waveform.ndim not in (1, 2):
        raise ValueError(
            f"waveform must be (samples,) or (samples, channels), not {waveform.shape}"
        )
    if start_seconds < 0:
        raise UsageError(f"start_seconds must be >= 0, not {start_seconds:g}")
    if not sample_rate > 0:
        raise UsageError(f"audio sample rate must be > 0 Hz, not {sample_rate!r}")
    first = round(start_seconds * sample_rate)
    span = waveform[first : first + round(CLIP_SECONDS * sample_rate)].astype(np.float64)
    needed = samples_for_examples(NUM_SEGMENTS)
    # resampy returns int(samples * 16000 / rate) samples.
    if math.floor(len(span) * SAMPLE_RATE / sample_rate) < needed:
        raise UsageError(
            f"the audio lasts {math.floor(len(span) / sample_rate * 1000) / 1000:.3f} s "
            f"from {start_seconds:g} s on; "
            f"{NUM_SEGMENTS} VGGish examples need {needed / SAMPLE_RATE:.3f} s"
        )
    if span.ndim == 2:
        span = span.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        span = resampy.resample(span, sample_rate, SAMPLE_RATE)
    return np.asarray(log_mel_examples(span))[:NUM_SEGMENTS]


def audio_features(
    waveform, sample_rate: float, model: keras.Model, start_seconds: float = 0.0
) -> np.ndarray:
    """The AVE audio features of [start_seconds, start_seconds + 10) s of a waveform.

    Args:
        waveform: (samples,) or (samples, channels) float, values in [-1, 1].
        sample_rate: samples per second of ``waveform``, Hz.
        model: VGGish from `ave_tf.extraction.vggish.vggish_from_checkpoint`.
        start_seconds: where the 10 s span starts in ``waveform``.

    Returns:
        (10, 128) float32: one raw VGGish embedding per 0.96 s example.

    Raises:
        UsageError: as `audio_examples`; the caller adds the file name.
    """
    return np.asarray(model.predict_on_batch(audio_examples(waveform, sample_rate, start_seconds)))
