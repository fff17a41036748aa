"""The VGGish front end in TensorFlow ops: a 16 kHz waveform to (examples, 96, 64) log-mel patches.

Reproduces the official NumPy front end (tensorflow/models research/audioset/vggish,
``vggish_input.waveform_to_examples`` after resampling; constants from ``vggish_params.py``):

- frames of 25 ms (400 samples) every 10 ms (160 samples), complete frames only;
- a periodic Hann window, FFT length 512 (the next power of two), magnitude spectrum (257 bins);
- 64 triangular mel bands from 125 to 7500 Hz on the HTK scale, mel = 1127 ln(1 + f / 700),
  the band edges evenly spaced in mel and the DC bin given no weight;
- log(mel + 0.01);
- examples of 96 frames (0.96 s) with a 96-frame hop, complete examples only.

Example k therefore covers the samples [15360 k, 15360 k + 15600), i.e. [0.96 k, 0.96 k + 0.975) s.

The computation runs in float64, as the official NumPy code does: in float32 the FFT's rounding
noise (about 1e-7 of a loud tone's peak) shows in the quiet bands after log(mel + 0.01), up to
3e-4 on a pure sine. ``tf.signal.linear_to_mel_weight_matrix`` in float64 builds the official
mel matrix (same HTK formula, same triangles, DC row zero; checked to 1e-13 in
``log_mel_test.py``), so it is used as is.

The constants import nothing heavy (``clip_encoding`` and the programs' flags use them);
TensorFlow is imported by the functions that compute.
"""

SAMPLE_RATE = 16000
"""VGGish's input rate, Hz."""
STFT_WINDOW = 400
"""Samples per STFT frame (25 ms)."""
STFT_HOP = 160
"""Samples between STFT frames (10 ms)."""
FFT_LENGTH = 512
"""The next power of two of ``STFT_WINDOW``; the frames are zero-padded to it."""
MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
"""Added to the mel magnitudes before the log."""
EXAMPLE_FRAMES = 96
"""STFT frames per VGGish example (and between example starts): 0.96 s."""


def samples_for_examples(examples: int) -> int:
    """16 kHz samples that give ``examples`` complete examples (10 -> 153840, 9.615 s)."""
    return (examples * EXAMPLE_FRAMES - 1) * STFT_HOP + STFT_WINDOW


def mel_weight_matrix() -> "tf.Tensor":  # noqa: F821
    """The official VGGish mel matrix: (257, 64) float64, magnitude bins to mel bands."""
    import tensorflow as tf  # (deferred: see the module docstring)

    return tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=MEL_BANDS,
        num_spectrogram_bins=FFT_LENGTH // 2 + 1,
        sample_rate=SAMPLE_RATE,
        lower_edge_hertz=MEL_MIN_HZ,
        upper_edge_hertz=MEL_MAX_HZ,
        dtype=tf.float64,
    )


def log_mel_spectrogram(waveform_16k) -> "tf.Tensor":  # noqa: F821
    """Log-mel spectrogram of 16 kHz waveforms.

    Args:
        waveform_16k: (..., samples) float32 or float64, values in [-1, 1], 16 kHz; leading
            axes (of known rank) are independent waveforms.

    Returns:
        (..., frames, 64) float64, frames = 1 + (samples - 400) // 160 (0 below 400 samples).
    """
    import tensorflow as tf  # (deferred: see the module docstring)

    waveform = tf.convert_to_tensor(waveform_16k)
    frames = tf.signal.frame(tf.cast(waveform, tf.float64), STFT_WINDOW, STFT_HOP)
    windowed = frames * tf.signal.hann_window(STFT_WINDOW, periodic=True, dtype=tf.float64)
    # Zero-padded to the FFT length by hand: tf.signal.stft's rfft(fft_length=...) rejects a
    # waveform too short for one frame instead of returning no frames.
    padding = [[0, 0]] * waveform.shape.rank + [[0, FFT_LENGTH - STFT_WINDOW]]
    magnitude = tf.abs(tf.signal.rfft(tf.pad(windowed, padding)))  # (..., frames, 257)
    return tf.math.log(tf.matmul(magnitude, mel_weight_matrix()) + LOG_OFFSET)


def log_mel_examples(waveform_16k) -> "tf.Tensor":  # noqa: F821
    """VGGish input examples of 16 kHz waveforms, as ``vggish_input.waveform_to_examples``.

    Args:
        waveform_16k: (..., samples) float32 or float64, values in [-1, 1], 16 kHz; leading
            axes (of known rank) are independent waveforms.

    Returns:
        (..., examples, 96, 64) float32; examples = 1 + (frames - 96) // 96 complete examples
        (0 when there are fewer than 96 frames); trailing frames that fill no example are
        dropped.
    """
    import tensorflow as tf  # (deferred: see the module docstring)

    log_mel = log_mel_spectrogram(waveform_16k)
    examples = tf.signal.frame(log_mel, EXAMPLE_FRAMES, EXAMPLE_FRAMES, axis=-2)
    return tf.cast(examples, tf.float32)
