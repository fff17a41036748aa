"""The tf.signal VGGish front end against a plain NumPy front end written from the recipe."""

import numpy as np
import pytest
import tensorflow as tf

from ave_tf.extraction.log_mel import (
    log_mel_examples,
    mel_weight_matrix,
    samples_for_examples,
)

RATE = 16000


def numpy_mel_matrix() -> np.ndarray:
    """(257, 64): HTK-mel triangles, edges evenly spaced in mel over 125-7500 Hz, DC bin zero."""

    def mel(hertz):
        return 1127.0 * np.log(1.0 + hertz / 700.0)

    edges = mel(125.0) + np.arange(66) * (mel(7500.0) - mel(125.0)) / 65
    matrix = np.zeros((257, 64))
    for k in range(1, 257):  # bin 0 (DC) keeps no weight
        m = mel(k * (RATE / 2) / 256)
        for band in range(64):
            low, centre, high = edges[band], edges[band + 1], edges[band + 2]
            rising = (m - low) / (centre - low)
            falling = (high - m) / (high - centre)
            matrix[k, band] = max(0.0, min(rising, falling))
    return matrix


def numpy_log_mel_examples(waveform: np.ndarray) -> np.ndarray:
    """25 ms periodic-Hann frames every 10 ms, |rfft 512|, mel, log(+0.01), 96-frame examples."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = [
        waveform[start : start + 400] * window for start in range(0, len(waveform) - 399, 160)
    ]
    spectra = [np.abs(np.fft.rfft(frame, n=512)) for frame in frames]
    log_mel = np.log(np.reshape(spectra, (-1, 257)) @ numpy_mel_matrix() + 0.01)
    examples = [log_mel[start : start + 96] for start in range(0, len(log_mel) - 95, 96)]
    return np.reshape(examples, (-1, 96, 64))


def waveform(kind: str, samples: int) -> np.ndarray:
    rng = np.random.default_rng(samples)
    t = np.arange(samples) / RATE
    if kind == "sines":
        return 0.6 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t + 1)
    if kind == "noise":
        return rng.uniform(-1, 1, samples)
    if kind == "quiet_noise":
        return 1e-4 * rng.normal(size=samples)
    return np.zeros(samples)


def assert_log_mel_close(actual, expected):
    """<= 1e-5 absolute where |value| <= 1, relative above."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    error = np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))
    assert error.max(initial=0.0) <= 1e-5


def test_mel_matrix_is_the_official_construction():
    np.testing.assert_allclose(np.asarray(mel_weight_matrix()), numpy_mel_matrix(), atol=1e-12)


@pytest.mark.parametrize("kind", ["sines", "noise", "quiet_noise", "silence"])
@pytest.mark.parametrize(
    "samples",
    [
        160000,  # 10.00 s: 998 frames, 10 examples, 38 frames left over
        159680,  # 9.98 s: 996 frames, still 10 examples
        50000,  # 3 examples and a part
        15599,  # one sample short of one example
    ],
)
def test_log_mel_examples_match_numpy(kind, samples):
    signal = waveform(kind, samples).astype("float32")  # the contract's input dtype
    assert_log_mel_close(log_mel_examples(signal), numpy_log_mel_examples(signal.astype("float64")))


def test_short_waveforms_give_no_examples():
    for samples in (0, 399, 400, 15599):
        assert log_mel_examples(np.zeros(samples, "float32")).shape == (0, 96, 64)


def test_samples_for_ten_examples():
    needed = samples_for_examples(10)
    assert needed == 153840  # 9.615 s
    assert log_mel_examples(np.zeros(needed, "float32")).shape[0] == 10
    assert log_mel_examples(np.zeros(needed - 1, "float32")).shape[0] == 9


def test_each_example_covers_its_documented_span():
    # Example k reads the samples [15360 k, 15360 k + 15600) and nothing else.
    signal = waveform("noise", 60000)
    base = np.asarray(log_mel_examples(signal))
    k, start, stop = 1, 15360, 15360 + 15600
    # The periodic Hann window is 0 at a frame's first sample, so `start + 1` is the first to count.
    for position, inside in [(start, False), (start + 1, True), (stop - 1, True), (stop, False)]:
        changed = signal.copy()
        changed[position] += 0.5
        moved = not np.array_equal(np.asarray(log_mel_examples(changed))[k], base[k])
        assert moved == inside, position


def test_runs_in_a_tf_function_with_unknown_length():
    graph = tf.function(log_mel_examples, input_signature=[tf.TensorSpec([None], tf.float32)])
    signal = waveform("sines", 32000).astype("float32")
    np.testing.assert_array_equal(np.asarray(graph(signal)), np.asarray(log_mel_examples(signal)))
    assert graph(np.zeros(10, "float32")).shape == (0, 96, 64)


def test_survives_a_saved_model_round_trip(tmp_path):
    module = tf.Module()
    module.examples = tf.function(
        log_mel_examples, input_signature=[tf.TensorSpec([None], tf.float32)]
    )
    tf.saved_model.save(module, str(tmp_path))
    reloaded = tf.saved_model.load(str(tmp_path))
    signal = waveform("noise", 20000).astype("float32")
    np.testing.assert_array_equal(
        np.asarray(reloaded.examples(signal)), np.asarray(log_mel_examples(signal))
    )


def test_leading_axes_are_independent_waveforms():
    kinds = ("sines", "noise", "silence")
    batch = np.stack([waveform(kind, 16000) for kind in kinds]).astype("float32")
    together = np.asarray(log_mel_examples(batch))
    assert together.shape == (3, 1, 96, 64)
    for row, signal in zip(together, batch, strict=True):
        assert_log_mel_close(row, numpy_log_mel_examples(signal.astype("float64")))
