"""The AVE audio recipe: per-second chunks, resampling, mono, the span, too-short clips."""

import keras
import numpy as np
import pytest
import resampy

from ave_tf.errors import UsageError
from ave_tf.extraction.audio import audio_examples, audio_features
from ave_tf.extraction.log_mel_test import assert_log_mel_close, numpy_log_mel_examples


def sine(frequency: float, rate: int, seconds: float) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)


def expected_peak_band(frequency: float) -> int:
    """The mel band (of 64 over 125-7500 Hz, HTK mel) whose centre is nearest the tone."""

    def mel(hertz):
        return 1127.0 * np.log(1.0 + hertz / 700.0)

    centres = np.linspace(mel(125.0), mel(7500.0), 66)[1:-1]
    return int(np.argmin(np.abs(centres - mel(frequency))))


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("frequency", [1000.0, 3000.0])
def test_resampled_tone_peaks_in_its_mel_band(rate, frequency):
    examples = audio_examples(sine(frequency, rate, 10.0), rate)
    assert examples.shape == (10, 96, 64) and examples.dtype == np.float32
    peak = expected_peak_band(frequency)
    assert np.argmax(examples.mean(axis=(0, 1))) == peak
    native = audio_examples(sine(frequency, 16000, 10.0), 16000)
    np.testing.assert_allclose(examples[..., peak], native[..., peak], atol=1e-3)


def test_channels_are_averaged_to_mono():
    rng = np.random.default_rng(0)
    left, right = rng.uniform(-1, 1, (2, 160000))
    stereo = np.stack([left, right], axis=1)
    np.testing.assert_array_equal(
        audio_examples(stereo, 16000), audio_examples((left + right) / 2, 16000)
    )


def test_the_span_starts_at_start_seconds():
    waveform = np.random.default_rng(1).uniform(-1, 1, 12 * 16000)
    np.testing.assert_array_equal(
        audio_examples(waveform, 16000, start_seconds=1.5),
        audio_examples(waveform[24000 : 24000 + 160000], 16000),
    )


def test_the_ave_recipe_by_numpy():
    # Each second alone: mono, resampy to 16 kHz, the official front end (written in NumPy in
    # log_mel_test.py), its one example.
    rate = 44100
    stereo = np.random.default_rng(4).uniform(-1, 1, (10 * rate, 2))
    expected = []
    for i in range(10):
        second = stereo[i * rate : (i + 1) * rate].mean(axis=1)
        expected.append(numpy_log_mel_examples(resampy.resample(second, rate, 16000))[0])
    assert_log_mel_close(audio_examples(stereo, rate), np.stack(expected))


def test_each_example_hears_only_its_own_second():
    rate = 44100
    waveform = np.random.default_rng(5).uniform(-1, 1, 10 * rate)
    base = audio_examples(waveform, rate)
    changed = waveform.copy()
    changed[round(3.5 * rate)] += 0.5
    moved = np.any(audio_examples(changed, rate) != base, axis=(1, 2))
    np.testing.assert_array_equal(moved, [i == 3 for i in range(10)])


def test_the_last_25_ms_of_each_second_are_not_heard():
    waveform = np.random.default_rng(6).uniform(-1, 1, 160000)
    base = audio_examples(waveform, 16000)
    changed = waveform.copy()
    changed[3 * 16000 + 15600 : 4 * 16000] = 0.0  # [3.975, 4) s
    np.testing.assert_array_equal(audio_examples(changed, 16000), base)


def test_a_slightly_short_clip_gives_the_same_ten_examples():
    waveform = np.random.default_rng(2).uniform(-1, 1, 160000)
    full = audio_examples(waveform, 16000)
    for samples in (159680, 159600):  # 9.98 s; 9.975 s, the least 10 examples need
        np.testing.assert_array_equal(audio_examples(waveform[:samples], 16000), full)


@pytest.mark.parametrize(
    "waveform, rate, start, lasts",
    [
        (np.zeros(159599), 16000, 0.0, "9.974 s from 0 s on"),
        (np.zeros((4 * 44100, 2)), 44100, 0.0, "4.000 s from 0 s on"),
        (np.zeros(12 * 16000), 16000, 5.0, "7.000 s from 5 s on"),
        (np.zeros(12 * 16000), 16000, 20.0, "0.000 s from 20 s on"),
    ],
)
def test_too_short_says_how_long_it_is_and_what_is_needed(waveform, rate, start, lasts):
    with pytest.raises(UsageError) as raised:
        audio_examples(waveform, rate, start_seconds=start)
    assert str(raised.value) == f"the audio lasts {lasts}; 10 VGGish examples need 9.975 s"


def test_bad_start_and_rate():
    with pytest.raises(UsageError, match="start_seconds must be >= 0, not -1"):
        audio_examples(np.zeros(160000), 16000, start_seconds=-1)
    with pytest.raises(UsageError, match="sample rate must be > 0 Hz, not 0"):
        audio_examples(np.zeros(160000), 0)


def test_audio_features_run_the_model_on_the_examples():
    # A linear stand-in for VGGish: the features must be exactly model(examples).
    inputs = keras.Input((96, 64))
    outputs = keras.layers.Dense(128, use_bias=False)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    waveform = np.random.default_rng(3).uniform(-1, 1, (441000, 2))
    features = audio_features(waveform, 44100, model)
    examples = audio_examples(waveform, 44100)
    kernel = np.asarray(model.layers[-1].kernel)
    assert features.shape == (10, 128) and features.dtype == np.float32
    np.testing.assert_allclose(features, examples.reshape(10, -1) @ kernel, rtol=1e-4, atol=1e-4)
