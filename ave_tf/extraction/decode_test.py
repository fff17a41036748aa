"""Tests of `ave_tf.extraction.decode`: the resize, the 10 s span and every bad file."""

import os

import numpy as np
import pytest

from ave_tf.extraction import decode
from ave_tf.testing.clips import AUDIO_RATE, second_level


def _cv2_linear(image: np.ndarray, size: int) -> np.ndarray:
    """cv2.resize(image, (size, size), interpolation=INTER_LINEAR) in float, from its
    definition: source coordinate (x + 0.5) * scale - 0.5, clamped to the edge pixels."""

    def taps(out_size, in_size):
        source = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
        low = np.floor(source).astype(int)
        weight = source - low
        weight[low < 0] = 0.0
        low = np.clip(low, 0, in_size - 1)
        weight[low >= in_size - 1] = 0.0
        high = np.minimum(low + 1, in_size - 1)
        return low, high, weight

    image = image.astype(np.float64)
    y0, y1, wy = taps(size, image.shape[0])
    x0, x1, wx = taps(size, image.shape[1])
    rows = image[y0] * (1 - wy)[:, None, None] + image[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


@pytest.mark.parametrize("shape", [(48, 64), (360, 480), (225, 223)])
def test_resize_matches_cv2_inter_linear_up_to_rounding(shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    resized = decode.resize_frame(image)
    assert resized.shape == (224, 224, 3) and resized.dtype == np.uint8
    expected = _cv2_linear(image, 224)
    # Rounded to uint8 (0.5) after interpolation in float32 (weights ~1e-5 off, x 255).
    assert np.max(np.abs(resized.astype(np.float64) - expected)) <= 0.51


def test_ten_second_clip_gives_every_frame_and_its_audio(clips):
    clip = decode.read_clip(clips["ten_25fps_mono.mp4"])
    assert clip.frames.shape == (250, 224, 224, 3) and clip.frames.dtype == np.uint8
    assert clip.waveform.shape == (10 * AUDIO_RATE, 1) and clip.waveform.dtype == np.float32
    assert clip.sample_rate == AUDIO_RATE
    assert clip.duration == pytest.approx(10.0, abs=0.05)
    # RGB order: the left quarter of each frame is red, the rest grey of the second's level.
    assert np.abs(clip.frames[0, 112, 10].astype(int) - [255, 20, 20]).max() <= 8
    for second in range(10):
        level = clip.frames[second * 25 + 12, 112, 150].astype(int)
        assert np.abs(level - second_level(second)).max() <= 4, second
    # The encoded sine comes back at its place to the sample (AAC error aside).
    times = np.arange(10 * AUDIO_RATE) / AUDIO_RATE
    error = clip.waveform[:, 0] - 0.5 * np.sin(2 * np.pi * 440 * times)
    assert np.mean(np.abs(error[4096:])) < 0.01


def test_ntsc_rate_counts_decoded_frames(clips):
    clip = decode.read_clip(clips["ten_ntsc_stereo.mp4"])
    assert clip.frames.shape[0] == 300  # frames at i * 1001/30000 s below 10 s
    assert clip.waveform.shape == (10 * AUDIO_RATE, 2)
    assert not np.allclose(clip.waveform[:, 0], clip.waveform[:, 1])


def test_twelve_second_clip_takes_the_span_from_start_seconds(clips):
    path = clips["twelve_ntsc_stereo.mkv"]
    first = decode.read_clip(path)
    later = decode.read_clip(path, start_seconds=2.0)
    assert first.duration == pytest.approx(12.0, abs=0.05)
    frame_seconds = 1001 / 30000
    expected = int(np.ceil(12.0 / frame_seconds)) - int(np.ceil(2.0 / frame_seconds))
    assert later.frames.shape[0] == expected
    assert np.abs(later.frames[0, 112, 150].astype(int) - second_level(2)).max() <= 4
    assert np.abs(later.frames[-1, 112, 150].astype(int) - second_level(11)).max() <= 4
    # The same frames: [2, 10) of the first span is the start of the later one.
    offset = first.frames.shape[0] - int(np.ceil(10.0 / frame_seconds))
    np.testing.assert_array_equal(later.frames[0], first.frames[60 + offset])
    # The same audio samples, aligned to Matroska's 1 ms timestamps (after the decoder's
    # warm-up): 2 s later in the first span, within 44 samples.
    assert later.waveform.shape == (10 * AUDIO_RATE, 2)
    piece = later.waveform[8192 : 8192 + AUDIO_RATE]
    errors = {
        lag: np.abs(first.waveform[2 * AUDIO_RATE + 8192 + lag :][:AUDIO_RATE] - piece).mean()
        for lag in range(-44, 45)
    }
    assert min(errors.values()) < 1e-3


def test_span_past_the_end_is_too_short(clips):
    with pytest.raises(decode.ClipError, match=r"twelve_ntsc_stereo.mkv: lasts 12\.0\d s"):
        decode.read_clip(clips["twelve_ntsc_stereo.mkv"], start_seconds=3.0)


def test_silent_audio_substitutes_silence_only_when_asked(clips):
    path = clips["no_audio.mp4"]
    with pytest.raises(decode.ClipError, match=r"no_audio.mp4: has no audio stream.*silent_audio"):
        decode.read_clip(path)
    clip = decode.read_clip(path, silent_audio=True)
    assert clip.frames.shape[0] == 250
    assert clip.sample_rate == decode.SILENCE_SAMPLE_RATE
    np.testing.assert_array_equal(clip.waveform, np.zeros((160000, 1), np.float32))


@pytest.mark.parametrize(
    "name, message",
    [
        ("four_seconds.mp4", r"four_seconds.mp4: lasts 4\.0\d s \(duration 4\.0\d s\)"),
        ("short_audio.mp4", r"short_audio.mp4: its audio ends at 5\.0\d s; AVE features need"),
        ("truncated.mp4", r"truncated.mp4: .*truncated or corrupt"),
        ("not_a_video.mp4", r"not_a_video.mp4: not a readable video file"),
        ("audio_only.m4a", r"audio_only.m4a: has no video stream"),
    ],
)
def test_bad_files_raise_one_error_naming_the_file(clips, name, message):
    with pytest.raises(decode.ClipError, match=message) as raised:
        decode.read_clip(clips[name])
    assert "\n" not in str(raised.value)


def test_missing_file(tmp_path):
    with pytest.raises(decode.ClipError, match="absent.mp4: no such file"):
        decode.read_clip(tmp_path / "absent.mp4")


def test_a_directory_is_named_as_one(tmp_path):
    (tmp_path / "clip.mp4").mkdir()
    with pytest.raises(decode.ClipError, match=r"clip.mp4: is a directory, not a video file$"):
        decode.read_clip(tmp_path / "clip.mp4")
    with pytest.raises(decode.ClipError, match=r"^--video .*clip.mp4: is a directory, not a video"):
        decode.check_video_file(tmp_path / "clip.mp4", flag="video")
    os.mkfifo(tmp_path / "pipe.mp4")  # opening it would block: refused without opening
    with pytest.raises(decode.ClipError, match=r"pipe.mp4: is not a regular file$"):
        decode.read_clip(tmp_path / "pipe.mp4")
