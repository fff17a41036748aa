"""Tests of `FeatureExtractor`: decoding, both feature halves and errors, wired together."""

import numpy as np
import pytest

from ave_tf.extraction import audio, decode, vgg19, vggish
from ave_tf.extraction.extractor import FeatureExtractor
from ave_tf.extraction.vggish_test import random_vggish_values, write_tf1_checkpoint
from ave_tf.testing.tiny_extractors import tiny_audio_model, tiny_visual_model


@pytest.fixture(scope="module")
def extractor():
    return FeatureExtractor(tiny_audio_model(), tiny_visual_model(), batch_size=16)


def test_extract_gives_the_features_of_the_span(clips, extractor):
    path = clips["twelve_ntsc_stereo.mkv"]
    first_audio, first_visual = extractor.extract(path)
    later_audio, later_visual = extractor.extract(path, start_seconds=2.0)
    for features, shape in [(later_audio, (10, 128)), (later_visual, (10, 7, 7, 512))]:
        assert features.shape == shape and features.dtype == np.float32
    clip = decode.read_clip(path, start_seconds=2.0)
    np.testing.assert_allclose(
        later_visual, vgg19.visual_features(clip.frames, extractor.visual_model), rtol=1e-5
    )
    np.testing.assert_allclose(
        later_audio,
        audio.audio_features(clip.waveform, clip.sample_rate, extractor.audio_model),
        rtol=1e-5,
    )
    # Seconds 2..9 of the first span are seconds 0..7 of the later one (grey levels differ).
    np.testing.assert_allclose(later_visual[:8], first_visual[2:], rtol=1e-3, atol=1e-3)
    assert not np.allclose(later_visual[0], first_visual[0])


def test_silent_audio_gives_the_features_of_silence(clips, extractor):
    features, _ = extractor.extract(clips["no_audio.mp4"], silent_audio=True)
    silence = np.zeros(16000 * 10, np.float32)
    np.testing.assert_allclose(
        features, audio.audio_features(silence, 16000, extractor.audio_model), rtol=1e-6
    )


def test_bad_clips_raise_clip_errors_naming_the_file(clips, extractor):
    with pytest.raises(decode.ClipError, match="four_seconds.mp4: lasts"):
        extractor.extract(clips["four_seconds.mp4"])
    with pytest.raises(decode.ClipError, match="no_audio.mp4: has no audio stream"):
        extractor.extract(clips["no_audio.mp4"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_audio_features_are_what_a_relu_gives(clips, tmp_path, seed):
    """Whatever the clip and the weights, the audio features leave VGGish's fc2 through its
    ReLU: none is negative and a share of them is exactly 0 (a linear fc2 gives signed values
    and no exact zero). Random weights with biases of both signs, in the checkpoint format."""
    checkpoint = write_tf1_checkpoint(tmp_path / "vggish_model.ckpt", random_vggish_values(seed))
    extractor = FeatureExtractor(vggish.vggish_from_checkpoint(checkpoint), tiny_visual_model())
    for name in ("ten_25fps_mono.mp4", "twelve_ntsc_stereo.mkv", "no_audio.mp4"):
        features, _ = extractor.extract(clips[name], silent_audio=True)
        assert features.min() >= 0, name
        assert 0.05 <= np.mean(features == 0) <= 0.95, name


def test_batch_size_is_checked():
    with pytest.raises(ValueError, match="batch_size must be >= 1; got 0"):
        FeatureExtractor(None, None, batch_size=0)
