"""Tests of `python -m ave_tf.extract`: the video list, the resumable features file, the
command line, and (slow) the real VGGish and VGG19 from video file to `predict --video`."""

import fractions
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ave_tf import extract
from ave_tf.errors import UsageError
from ave_tf.extraction.extractor import FeatureExtractor
from ave_tf.testing.clips import ClipSpec, write_clip, write_test_clips
from ave_tf.testing.documented_output import REPO, assert_documented_output
from ave_tf.testing.tiny_extractors import tiny_audio_model, tiny_visual_model
from ave_tf.videos import read_features_file

ANNOTATIONS = """Category&VideoID&Quality&StartTime&EndTime
Church bell&ten_ntsc_stereo&good&0&10
Male speech, man speaking&ten_25fps_mono&good&2&5
Female speech, woman speaking&ten_ntsc_stereo&good&1&4
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_test_clips(tmp_path_factory.mktemp("clips"))


def test_list_videos_from_files_folder_and_annotations(clips, tmp_path):
    folder = clips["ten_25fps_mono.mp4"].parent
    given = extract.list_videos([str(clips["no_audio.mp4"])], None, None)
    assert given == [("no_audio", clips["no_audio.mp4"])]
    listed = extract.list_videos([], str(folder), None)
    assert [video_id for video_id, _ in listed] == sorted(
        path.stem
        for path in folder.iterdir()
        if path.suffix in (".mp4", ".mkv")  # not the .m4a
    )
    annotations = tmp_path / "Annotations.txt"
    annotations.write_text(ANNOTATIONS)
    ordered = extract.list_videos([], str(folder), str(annotations))
    assert [video_id for video_id, _ in ordered] == [
        "ten_ntsc_stereo",
        "ten_25fps_mono",
        "ten_ntsc_stereo",
    ]
    assert ordered[0][1] == clips["ten_ntsc_stereo.mp4"]


def test_list_videos_errors(clips, tmp_path):
    folder = str(clips["ten_25fps_mono.mp4"].parent)
    annotations = tmp_path / "Annotations.txt"
    annotations.write_text(ANNOTATIONS + "Church bell&absent_id&good&0&10\n")
    cases = [
        (([], None, None), "give video files or --videos_dir"),
        ((["a.mp4"], folder, None), "give video files or --videos_dir"),
        (([str(tmp_path / "absent.mp4")], None, None), "absent.mp4: no such file"),
        (([], str(tmp_path / "nope"), None), "--videos_dir .*nope: no such folder"),
        (([], str(tmp_path), None), "no video files"),
        (([], folder, str(annotations)), "no video file for 1 of the 4 annotated .*absent_id"),
    ]
    for arguments, message in cases:
        with pytest.raises(UsageError, match=message):
            extract.list_videos(*arguments)


class _CountingExtractor(FeatureExtractor):
    """Tiny models; counts extractions and raises KeyboardInterrupt at call ``stop_at``."""

    def __init__(self, stop_at=None):
        super().__init__(tiny_audio_model(), tiny_visual_model(), batch_size=16)
        self.calls, self.stop_at = [], stop_at

    def extract(self, path, start_seconds=0.0, silent_audio=False):
        if len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(path.name)
        return super().extract(path, start_seconds, silent_audio)


def test_interrupted_run_resumes_and_writes_the_predict_layout(clips, tmp_path):
    videos = [
        ("b", clips["ten_ntsc_stereo.mp4"]),
        ("a", clips["ten_25fps_mono.mp4"]),
        ("b_again", clips["ten_ntsc_stereo.mp4"]),  # annotated twice: extracted once
        ("silent", clips["no_audio.mp4"]),
    ]
    output = tmp_path / "out" / "features.h5"
    first = _CountingExtractor(stop_at=1)
    with pytest.raises(KeyboardInterrupt):
        extract.extract_to_file(videos, output, lambda: first, silent_audio=True)
    assert not output.exists() and first.calls == ["ten_ntsc_stereo.mp4"]
    second = _CountingExtractor()
    extract.extract_to_file(videos, output, lambda: second, silent_audio=True)
    assert second.calls == ["ten_25fps_mono.mp4", "no_audio.mp4"]
    assert not (tmp_path / "out" / "features.h5.parts").exists()
    assert sorted(os.listdir(tmp_path / "out")) == ["features.h5"]
    read = read_features_file(output)
    ids, audio, visual = list(read.video_ids), read.audio, read.visual
    assert ids == ["b", "a", "b_again", "silent"]
    assert audio.shape == (4, 10, 128) and visual.shape == (4, 10, 7, 7, 512)
    assert audio.dtype == np.float32 and visual.dtype == np.float32
    expected = second.extract(clips["ten_ntsc_stereo.mp4"])
    np.testing.assert_allclose(audio[0], expected[0], rtol=1e-5)
    np.testing.assert_allclose(visual[2], expected[1], rtol=1e-5)


def test_parts_of_other_settings_are_not_mixed(clips, tmp_path):
    videos = [("a", clips["ten_25fps_mono.mp4"])]
    output = tmp_path / "features.h5"
    with pytest.raises(KeyboardInterrupt):
        extract.extract_to_file(videos * 2, output, lambda: _CountingExtractor(stop_at=0))
    parts = tmp_path / "features.h5.parts"
    extractor = _CountingExtractor(stop_at=1)
    with pytest.raises(KeyboardInterrupt):
        extract.extract_to_file(
            [*videos, ("b", clips["ten_ntsc_stereo.mp4"])], output, lambda: extractor
        )
    assert parts.is_dir()
    with pytest.raises(UsageError, match="features.h5.parts holds videos extracted with"):
        extract.extract_to_file(videos, output, _CountingExtractor, start_seconds=1.0)
    with pytest.raises(UsageError, match="--output .*features.npz: must end in .h5"):
        extract.extract_to_file(videos, tmp_path / "features.npz", _CountingExtractor)


def _run(module, *arguments, cwd=None):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, arguments)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=900,
        cwd=cwd,
    )


@pytest.mark.slow  # a TensorFlow start-up in a subprocess: ~40 s on 2 busy cores
def test_command_line_bad_weights_is_one_line_and_writes_nothing(clips, tmp_path):
    output = tmp_path / "features.h5"
    result = _run(
        "ave_tf.extract",
        f"--vggish_checkpoint={tmp_path / 'absent.ckpt'}",
        f"--vgg19_weights={tmp_path / 'absent.h5'}",
        f"--output={output}",
        clips["ten_25fps_mono.mp4"],
    )
    assert result.returncode == 2, result.stderr
    # (TensorFlow's own start-up lines on a machine without CUDA may precede it.)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: VGGish checkpoint {tmp_path / 'absent.ckpt'}: no such file"]
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.slow  # minutes on 2 busy cores: a 288 MB VGGish checkpoint, 3 TF start-ups
def test_real_models_from_video_file_to_timeline(clips, tmp_path):
    import keras

    from ave_tf.export import export_saved_model
    from ave_tf.extraction.vgg19 import NOTOP_WEIGHTS_FILE
    from ave_tf.extraction.vgg19_test import write_keras_vgg19_file
    from ave_tf.extraction.vggish_test import random_vggish_values, write_tf1_checkpoint
    from ave_tf.models import fully_supervised_model

    checkpoint = write_tf1_checkpoint(tmp_path / "vggish_model.ckpt", random_vggish_values(0))
    weights = tmp_path / NOTOP_WEIGHTS_FILE
    write_keras_vgg19_file(weights)
    keras.utils.set_random_seed(5)
    export_saved_model(fully_supervised_model(), tmp_path / "saved_models", "psp_fully")
    model = tmp_path / "saved_models" / "psp_fully"
    # 2 fps: 20 frames, so 20 distinct VGG19 frames (a 25 fps clip would need 160).
    video = write_clip(tmp_path / "clip.mp4", ClipSpec(seconds=10, fps=fractions.Fraction(2)))
    weight_flags = [f"--vggish_checkpoint={checkpoint}", f"--vgg19_weights={weights}"]

    # The output as the README names it, relative to the working directory.
    extracted = _run(
        "ave_tf.extract", *weight_flags, "--output=out/features.h5", video, cwd=tmp_path
    )
    assert extracted.returncode == 0, extracted.stderr
    assert_documented_output("extract", extracted.stdout)
    features = tmp_path / "out" / "features.h5"
    read = read_features_file(features)
    ids, audio, visual = list(read.video_ids), read.audio, read.visual
    assert ids == ["clip"] and np.all(np.isfinite(visual)) and visual.max() > 0
    assert np.all(np.isfinite(audio)) and np.ptp(audio) > 0

    reports = {}
    for name, source in [("file", [features]), ("video", [*weight_flags, f"--video={video}"])]:
        target = tmp_path / f"{name}.json"
        predicted = _run("ave_tf.predict", "--local", model, f"--json_output={target}", *source)
        assert predicted.returncode == 0, predicted.stderr
        assert "clip (" in predicted.stdout
        if name == "video":
            assert_documented_output("predict a video in-process", predicted.stdout)
        reports[name] = json.loads(target.read_text())
    assert reports["video"] == reports["file"]
    assert reports["video"][0]["timeline"]
