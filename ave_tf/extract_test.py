"""Tests of `python -m ave_tf.extract`: the video list, the resumable features file, the
command line, and (slow) the real VGGish and VGG19 from video file to `predict --video`."""

import fractions
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from ave_tf import extract
from ave_tf.errors import UsageError
from ave_tf.extraction import RECIPE_VERSION
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
        (([str(tmp_path)], None, None), f"{tmp_path}: is a directory, not a video file"),
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
    with h5py.File(output, "r") as file:
        assert file.attrs["recipe_version"] == RECIPE_VERSION == 2
    expected = second.extract(clips["ten_ntsc_stereo.mp4"])
    np.testing.assert_allclose(audio[0], expected[0], rtol=1e-5)
    np.testing.assert_allclose(visual[2], expected[1], rtol=1e-5)


def test_parts_begun_before_the_fc2_relu_get_it_when_resumed(clips, tmp_path, capsys):
    videos = [("a", clips["ten_25fps_mono.mp4"]), ("b", clips["ten_ntsc_stereo.mp4"])]
    output = tmp_path / "features.h5"
    with pytest.raises(KeyboardInterrupt):
        extract.extract_to_file(videos, output, lambda: _CountingExtractor(stop_at=1))
    settings = tmp_path / "features.h5.parts" / "settings.json"
    # What the extraction of recipe 1 kept: its settings name no recipe.
    stored = json.loads(settings.read_text())
    assert stored.pop("recipe_version") == 2
    settings.write_text(json.dumps(stored))
    other = r"with \{'silent_audio': False, 'start_seconds': 0.0\}, not \{'start_seconds': 1.0"
    with pytest.raises(UsageError, match=other):  # as it was stored, without a recipe
        extract.extract_to_file(videos, output, _CountingExtractor, start_seconds=1.0)
    resumed = _CountingExtractor()
    extract.extract_to_file(videos, output, lambda: resumed)
    assert resumed.calls == ["ten_ntsc_stereo.mp4"]
    notices = [line for line in capsys.readouterr().err.splitlines() if "ReLU" in line]
    assert notices == [
        f"resuming: {settings.parent} was begun before VGGish's fc2 had its ReLU; its audio "
        "features get it now (max(x, 0): exactly the features of this version)"
    ]
    audio = read_features_file(output).audio
    for row, (_, path) in enumerate(videos):
        signed = resumed.extract(path)[0]  # the tiny audio model is linear: signed
        assert signed.min() < 0
        np.testing.assert_allclose(audio[row], np.maximum(signed, 0), rtol=1e-5)


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


def _damage(path, how):
    content = path.read_bytes()
    middle = len(content) // 2
    damaged = {
        "truncated": content[: len(content) // 3],
        "zeroed": bytes(len(content)),
        "random": np.random.default_rng(0).bytes(len(content)),
        "empty": b"",
        # 4 KiB flipped inside the visual array: still a zip, its CRC-32 no longer matches.
        "flipped": content[:middle]
        + bytes(b ^ 0xFF for b in content[middle : middle + 4096])
        + content[middle + 4096 :],
        "lone_npy": content[content.index(b"\x93NUMPY") :],  # the first member, unzipped
    }[how]
    path.write_bytes(damaged)


@pytest.mark.parametrize("how", ["truncated", "zeroed", "random", "empty", "flipped", "lone_npy"])
def test_damaged_part_is_extracted_again_with_one_warning(clips, tmp_path, capsys, how):
    videos = [("a", clips["ten_25fps_mono.mp4"]), ("b", clips["ten_ntsc_stereo.mp4"])]
    output = tmp_path / "features.h5"
    with pytest.raises(KeyboardInterrupt):
        extract.extract_to_file(videos, output, lambda: _CountingExtractor(stop_at=1))
    (part,) = (tmp_path / "features.h5.parts").glob("*.npz")
    _damage(part, how)
    capsys.readouterr()
    second = _CountingExtractor()
    extract.extract_to_file(videos, output, lambda: second)
    assert second.calls == ["ten_25fps_mono.mp4", "ten_ntsc_stereo.mp4"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"warning: {part}: damaged part (")
    assert "ten_25fps_mono.mp4 again" in warnings[0]
    expected = second.extract(clips["ten_25fps_mono.mp4"])
    np.testing.assert_allclose(read_features_file(output).audio[0], expected[0], rtol=1e-5)
    np.testing.assert_allclose(read_features_file(output).visual[0], expected[1], rtol=1e-5)


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"silent_audio": fal', "damaged resume settings \\(Expecting value"),
        (b"", "damaged resume settings \\(Expecting value"),
        (b"\xff\xfe\x00garbage", "damaged resume settings \\('utf-8' codec"),
        (b"null", "damaged resume settings \\(a JSON NoneType, not an object"),
        (b"[0.0, false]", "damaged resume settings \\(a JSON list, not an object"),
        (b'{"silent_audio": "no", "start_seconds": 0}', "holds videos extracted with"),
    ],
)
def test_damaged_settings_file_is_one_usage_error(clips, tmp_path, content, message):
    videos = [("a", clips["ten_25fps_mono.mp4"]), ("b", clips["ten_ntsc_stereo.mp4"])]
    output = tmp_path / "features.h5"
    with pytest.raises(KeyboardInterrupt):
        extract.extract_to_file(videos, output, lambda: _CountingExtractor(stop_at=1))
    settings = tmp_path / "features.h5.parts" / "settings.json"
    settings.write_bytes(content)
    with pytest.raises(UsageError, match=message) as raised:
        extract.extract_to_file(videos, output, _CountingExtractor)
    assert "\n" not in str(raised.value)
    if "damaged" in message:
        assert str(raised.value).startswith(f"{settings}: damaged resume settings")
    assert not output.exists()


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
