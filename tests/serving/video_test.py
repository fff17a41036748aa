"""The video-in model (`ave_tf.export_video`): in-process and over REST it answers what
`FeatureExtractor.extract` + the features model answer on the same clip; bad inputs are 400s
naming the input; `python -m ave_tf.predict --server URL --model psp_video --video clip.mp4`.

Tiny stand-ins for VGGish and VGG19 (`ave_tf.testing.tiny_extractors`) keep the export fast;
the real architectures run in `benchmarks/extraction_benchmark.py`.
"""

import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver
from serving_helpers import serving_in_thread

from ave_tf import cli, export_video, predict, predictors
from ave_tf.events import format_timeline, segment_events
from ave_tf.extraction import clip_encoding, decode, graph
from ave_tf.extraction.audio import audio_examples
from ave_tf.extraction.extractor import FeatureExtractor
from ave_tf.extraction.log_mel import log_mel_examples
from ave_tf.serving import clip_client
from ave_tf.serving.client import BadRequestError, ServingClient
from ave_tf.testing.clips import ClipSpec, write_clip
from ave_tf.testing.documented_output import assert_documented_output
from ave_tf.testing.tiny_extractors import tiny_audio_model, tiny_visual_model
from tfserving_standin.repository import ModelRepository
from tfserving_standin.server import ModelServer

# ~60 s on 2 quiet cores (export ~20 s, two decodes, six model calls); 157 s at load 15.
pytestmark = pytest.mark.slow

FLAGS = flags.FLAGS
if "frame_format" not in FLAGS:  # cli_test.py may have defined them in this process
    predict.define_flags()

TOLERANCES = {"png": 2e-3, "jpeg": 1e-2}
"""Largest |segment probability - extract + PSP's| allowed per frame format. Measured on this
clip (flat grey seconds + a red stripe, 440 Hz sine) with the tiny models and the seeded PSP:
0.00097 with PNG frames (lossless: only the int16 rounding of the audio is left) and 0.0037
with JPEG frames (quality 95, 4:4:4), which adds its round trip."""


@pytest.fixture(scope="module")
def models():
    return tiny_audio_model(seed=3), tiny_visual_model(seed=4)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mp4", ClipSpec(seconds=10))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, keras_model, models):
    """(psp .keras path, psp_video version 1 path) under one export dir."""
    root = tmp_path_factory.mktemp("video_exports")
    keras_path = root / "psp_fully.keras"
    keras_model.save(keras_path)
    path = export_video.export_video_model(
        export_video.psp_serving(keras_path), *models, root / "saved_models"
    )
    return keras_path, path


@pytest.fixture(scope="module")
def video_server(exported):
    _, path = exported
    repository = ModelRepository("psp_video", path.parent, poll_seconds=0)
    repository.refresh()
    with serving_in_thread(ModelServer(("127.0.0.1", 0), repository)) as server:
        yield server


@pytest.fixture(scope="module")
def clip(clip_path):
    return decode.read_clip(clip_path)


@pytest.fixture(scope="module")
def encoded(clip):
    """Image format -> the video-in inputs of the clip (JPEG is what `predict` sends)."""
    return {
        image_format: clip_encoding.clip_inputs([clip], image_format) for image_format in TOLERANCES
    }


@pytest.fixture(scope="module")
def local_outputs(exported, encoded):
    """Image format -> the exported model's outputs, in-process (`predictors.load_predictor`)."""
    predict = predictors.load_predictor(exported[1])
    return {image_format: predict(inputs) for image_format, inputs in encoded.items()}


def _assert_same_answer(outputs, reference, tolerance):
    probabilities = outputs["segment_probabilities"]
    np.testing.assert_allclose(probabilities, reference["segment_probabilities"], atol=tolerance)
    # Classes must agree wherever the reference's top two are further apart than the tolerance.
    top2 = np.sort(reference["segment_probabilities"], axis=-1)[..., -2:]
    decided = top2[..., 1] - top2[..., 0] > 2 * tolerance
    np.testing.assert_array_equal(
        outputs["segment_classes"][decided], reference["segment_classes"][decided]
    )
    assert decided.any()
    np.testing.assert_array_equal(outputs["class_names"], reference["class_names"])


def test_graph_features_equal_the_extractors(clip_path, clip, encoded, models):
    """PNG frames: the visual features are the extractor's. The audio features are those of the
    int16-rounded PCM, computed here independently with NumPy framing + `log_mel_examples`;
    against the extractor's float samples the rounding moves the log-mel examples by at most
    0.142 (mean 0.019) log units on this clip, in the near-silent bands where log(mel + 0.01)
    is steepest (the AVE authors' 16-bit WAV files had the same rounding)."""
    inputs = encoded["png"]
    features = tf.function(lambda f, w: graph.clip_features(f, w, *models))
    audio, visual = features(inputs["frames"], inputs["waveform"])
    want_audio, want_visual = FeatureExtractor(*models).extract(clip_path)
    np.testing.assert_allclose(visual.numpy()[0], want_visual, rtol=1e-5, atol=1e-4)

    pcm = np.frombuffer(inputs["waveform"][0], "<i2").astype(np.float64) / 32768.0
    heard = pcm.reshape(10, 16000)[:, :15600]  # the first 0.975 s of each second
    int16_examples = np.asarray(log_mel_examples(heard))[:, 0]
    np.testing.assert_allclose(
        audio.numpy()[0], models[0].predict_on_batch(int16_examples), rtol=1e-5, atol=1e-5
    )
    rounding = np.abs(int16_examples - audio_examples(clip.waveform, clip.sample_rate))
    assert rounding.max() < 0.2 and rounding.mean() < 0.03


def test_in_process_and_rest_answer_extract_plus_psp(
    clip_path, exported, models, encoded, local_outputs, video_server
):
    audio, visual = FeatureExtractor(*models).extract(clip_path)
    keras_predict = predictors.load_predictor(exported[0])
    reference = keras_predict({"audio": audio[None], "visual": visual[None]})
    client = ServingClient(video_server.url, "psp_video")
    for image_format, tolerance in TOLERANCES.items():
        in_process = local_outputs[image_format]
        _assert_same_answer(in_process, reference, tolerance)
        over_rest = clip_client.predict_rest(client, encoded[image_format])
        np.testing.assert_allclose(
            over_rest["segment_probabilities"], in_process["segment_probabilities"], atol=1e-6
        )
        np.testing.assert_array_equal(over_rest["segment_classes"], in_process["segment_classes"])


def _bad_request(client, inputs) -> str:
    with pytest.raises(BadRequestError) as raised:
        clip_client.predict_rest(client, inputs)
    return raised.value.message


def test_bad_inputs_are_400s_naming_the_input(encoded, video_server):
    client = ServingClient(video_server.url, "psp_video", retries=0)
    good = encoded["jpeg"]
    not_an_image = good["frames"].copy()
    not_an_image[0, 7] = b"GIF89a not a jpeg"
    message = _bad_request(client, {**good, "frames": not_an_image})
    assert "frames" in message and "[0 7]" in message
    truncated = good["frames"].copy()
    truncated[0, 3] = truncated[0, 3][:200]
    assert "decode_frames" in _bad_request(client, {**good, "frames": truncated})
    message = _bad_request(client, {**good, "frames": good["frames"][:, :159]})
    assert "'frames'" in message and "[1,159]" in message
    short = np.array([good["waveform"][0][:-2]], dtype=object)
    message = _bad_request(client, {**good, "waveform": short})
    assert "waveform" in message and "319998" in message
    assert _bad_request(client, {**good, "waveform": np.array([b""], dtype=object)})
    # A value that is no base64 at all.
    body_client = ServingClient(video_server.url, "psp_video", retries=0)
    with pytest.raises(BadRequestError) as raised:
        body_client.request(
            "POST",
            body_client.model_url() + ":predict",
            b'{"inputs": {"frames": [[{"b64": "***"}]], "waveform": [{"b64": ""}]}}',
            {"Content-Type": "application/json"},
        )
    assert "frames" in raised.value.message
    # The server still answers good requests.
    assert clip_client.predict_rest(client, good)["segment_classes"].shape == (1, 10)


def test_predict_command_sends_the_video_to_the_server(
    clip_path, local_outputs, video_server, capsys
):
    argv = ["predict", "--server", video_server.url, "--model", "psp_video", "--video"]
    with flagsaver.flagsaver(), mock.patch.object(sys, "argv", [*argv, str(clip_path)]):
        with pytest.raises(SystemExit) as exited:
            cli.run(predict.main)
    printed = capsys.readouterr()
    assert exited.value.code in (0, None), printed.err
    outputs = local_outputs["jpeg"]  # what the command sends by default
    timeline = format_timeline(
        segment_events(outputs["segment_classes"][0], outputs["segment_probabilities"][0])
    )
    assert printed.out.startswith("clip (")
    assert_documented_output("predict a video on a video-in server", printed.out)
    assert printed.out.splitlines()[1:] == [f"  {line}" for line in timeline.splitlines()]
