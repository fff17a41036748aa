"""The AVE audio features of a clip: 10 VGGish embeddings, one per second from a start time.

The recipe of the released AVE features is the AVE authors' ``vggish_input.wavfile_to_examples``
(YapengTian/AVE-ECCV18, ``vggish_input.py``), which differs from the official VGGish one: it
cuts the clip into seconds *first* and runs the official front end on each second alone.
For second i = 0..9 of [start, start + 10) s:

1. the samples [i, i + 1) s, at the waveform's own rate, averaged to mono (mean of the channels),
   resampled on their own to 16 kHz with resampy's default filter (``kaiser_best``), in float64
   as the official NumPy code does;
2. `log_mel.log_mel_examples` of that second: 16000 samples give 98 frames, hence exactly one
   96-frame example, made of the second's first 15600 samples;
3. VGGish on the 10 examples: (10, 128), the raw ``vggish/embedding`` values of the 2018
   ``vggish_slim.py`` (after fc2's ReLU: non-negative; no PCA, no quantisation).

So embedding i hears [start + i, start + i + 0.975) s of the clip: aligned with the video's
seconds, the last 25 ms of each second unheard. (Running ``waveform_to_examples`` on the whole
10 s instead would give examples of [0.96 i, 0.96 i + 0.975) s, drifting 0.04 s per second.)
The last second must give one example, i.e. at least 0.975 s: a span from 9.975 s up gives the
10 embeddings, the same as the full 10 s would (at 44.1 kHz from 9.977 s up; below that the
resampling filter, which reaches a few ms past 0.975 s, changes the 10th example by ~1e-7);
a shorter span is an error (the AVE script fails there too; nothing is padded).
"""

import math

import keras
import numpy as np
import resampy

from ave_tf.ave import NUM_SEGMENTS
from ave_tf.errors import UsageError
from ave_tf.extraction.log_mel import SAMPLE_RATE, log_mel_examples, samples_for_examples

EXAMPLE_SAMPLES = samples_for_examples(1)
"""16 kHz samples one example reads: the first 15600 (0.975 s) of each second."""
NEEDED_SECONDS = NUM_SEGMENTS - 1 + EXAMPLE_SAMPLES / SAMPLE_RATE
"""9.975 s: nine whole seconds and the 0.975 s the last second's example reads."""


def seconds_16k(waveform, sample_rate: int, start_seconds: float = 0.0) -> list[np.ndarray]:
    """The 10 seconds of [start_seconds, start_seconds + 10) s as the recipe hears them.

    Args:
        waveform: (samples,) or (samples, channels) float, values in [-1, 1].
        sample_rate: samples per second of ``waveform``, Hz.
        start_seconds: where the 10 s span starts in ``waveform``.

    Returns:
        10 float64 mono 16 kHz arrays, second i resampled on its own (step 1 of the module
        docstring): 16000 samples each (the last may be shorter, never below the 15600 its
        example reads).

    Raises:
        UsageError: a start before 0, a sample rate <= 0, or less than the 9.975 s of audio the
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
    seconds = [
        waveform[first + round(i * sample_rate) : first + round((i + 1) * sample_rate)]
        for i in range(NUM_SEGMENTS)
    ]
    # resampy returns int(samples * 16000 / rate) samples.
    if math.floor(len(seconds[-1]) * SAMPLE_RATE / sample_rate) < EXAMPLE_SAMPLES:
        available = max(0, len(waveform) - first) / sample_rate
        raise UsageError(
            f"the audio lasts {math.floor(available * 1000) / 1000:.3f} s from "
            f"{start_seconds:g} s on; {NUM_SEGMENTS} VGGish examples need {NEEDED_SECONDS:.3f} s"
        )
    resampled = []
    for second in seconds:
        mono = second.astype(np.float64)
        if mono.ndim == 2:
            mono = mono.mean(axis=1)
        if sample_rate != SAMPLE_RATE:
            mono = resampy.resample(mono, sample_rate, SAMPLE_RATE)
        resampled.append(mono[:SAMPLE_RATE])
    return resampled


def audio_examples(waveform, sample_rate: int, start_seconds: float = 0.0) -> np.ndarray:
    """The 10 VGGish input examples of [start_seconds, start_seconds + 10) s, one per second.

    Args:
        waveform: (samples,) or (samples, channels) float, values in [-1, 1].
        sample_rate: samples per second of ``waveform``, Hz.
        start_seconds: where the 10 s span starts in ``waveform``.

    Returns:
        (10, 96, 64) float32 log-mel examples; example i is second i of the span.

    Raises:
        UsageError: as `seconds_16k`.
    """
    seconds = seconds_16k(waveform, sample_rate, start_seconds)
    heard = np.stack([second[:EXAMPLE_SAMPLES] for second in seconds])
    return np.asarray(log_mel_examples(heard))[:, 0]


def audio_features(
    waveform, sample_rate: int, model: keras.Model, start_seconds: float = 0.0
) -> np.ndarray:
    """The AVE audio features of [start_seconds, start_seconds + 10) s of a waveform.

    Args:
        waveform: (samples,) or (samples, channels) float, values in [-1, 1].
        sample_rate: samples per second of ``waveform``, Hz.
        model: VGGish from `ave_tf.extraction.vggish.vggish_from_checkpoint`.
        start_seconds: where the 10 s span starts in ``waveform``.

    Returns:
        (10, 128) float32: one raw VGGish embedding per second.

    Raises:
        UsageError: as `audio_examples`; the caller adds the file name.
    """
    return np.asarray(model.predict_on_batch(audio_examples(waveform, sample_rate, start_seconds)))
