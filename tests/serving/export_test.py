"""Tests of ave_tf.export: SavedModel signature, versions, atomic writes, models.config."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import MODEL_NAME, random_videos
from stand_in import stand_in_model

from ave_tf import ave
from ave_tf.export import export_saved_model, models_config_text
from ave_tf.model_files import saved_model_versions

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


def test_reloaded_signature_matches_keras_model(export_dir, keras_model):
    loaded = tf.saved_model.load(str(export_dir / MODEL_NAME / "1"))
    serve = loaded.signatures["serving_default"]
    audio, visual = random_videos(3, seed=5)
    outputs = {k: v.numpy() for k, v in serve(audio=audio, visual=visual).items()}
    expected = keras_model({"audio": audio, "visual": visual}, training=False)
    expected = np.asarray(expected["segment_probabilities"])
    np.testing.assert_allclose(outputs["segment_probabilities"], expected, rtol=1e-5, atol=1e-6)
    classes = expected.argmax(-1)
    np.testing.assert_array_equal(outputs["segment_classes"], classes)
    np.testing.assert_array_equal(outputs["is_event"], classes != ave.BACKGROUND)
    np.testing.assert_array_equal(
        outputs["video_class"], expected[..., : ave.BACKGROUND].mean(axis=1).argmax(-1)
    )
    assert outputs["class_names"].shape == (3, ave.NUM_CLASSES)
    assert [n.decode() for n in outputs["class_names"][0]] == list(ave.CLASS_NAMES)
    assert outputs["segment_classes"].dtype == np.int32
    assert outputs["is_event"].dtype == bool


def test_signature_specs(export_dir):
    serve = tf.saved_model.load(str(export_dir / MODEL_NAME / "1")).signatures["serving_default"]
    _, inputs = serve.structured_input_signature
    assert inputs["audio"].shape.as_list() == [None, 10, 128]
    assert inputs["visual"].shape.as_list() == [None, 10, 7, 7, 512]
    outputs = serve.structured_outputs
    assert outputs["segment_probabilities"].shape.as_list() == [None, 10, 29]
    assert outputs["video_class"].shape.as_list() == [None]
    assert outputs["is_event"].dtype == tf.bool


@pytest.mark.skipif(not os.path.exists(SAVED_MODEL_CLI), reason="saved_model_cli not installed")
def test_saved_model_cli_lists_signature(export_dir):
    result = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", str(export_dir / MODEL_NAME / "1"), "--all"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "signature_def['serving_default']" in text
    for name in (
        "audio",
        "visual",
        "segment_probabilities",
        "segment_classes",
        "is_event",
        "video_class",
        "class_names",
    ):
        assert f"['{name}'] tensor_info" in text
    assert "shape: (-1, 10, 7, 7, 512)" in text


def test_assets_and_models_config(export_dir):
    version = export_dir / MODEL_NAME / "1"
    names = (version / "assets" / "class_names.txt").read_text().splitlines()
    assert names == list(ave.CLASS_NAMES)
    config = (export_dir / "models.config").read_text()
    assert config == models_config_text(export_dir)
    assert 'name: "psp_fully"' in config
    assert 'base_path: "/models/psp_fully"' in config
    assert 'model_platform: "tensorflow"' in config
    assert config.startswith("model_config_list {")
    # Nothing half-written is left beside the versions.
    assert [p.name for p in (export_dir / MODEL_NAME).iterdir()] == ["1"]


def test_next_version_and_config_lists_every_model(tmp_path):
    model = stand_in_model()
    (tmp_path / "psp_fully" / "1").mkdir(parents=True)  # a version being written elsewhere
    second = export_saved_model(model, tmp_path, "psp_fully")
    other = export_saved_model(model, tmp_path, "psp_weakly", config_base_path="/srv/")
    assert (second.name, other.name) == ("2", "1")
    assert saved_model_versions(tmp_path / "psp_fully") == [2]  # 1 has no saved_model.pb
    config = (tmp_path / "models.config").read_text()
    assert config.count("config {") == 2
    assert 'base_path: "/srv/psp_fully"' in config and 'name: "psp_weakly"' in config


def test_failed_export_leaves_nothing(tmp_path, keras_model, monkeypatch):
    import ave_tf.export as export

    def broken(model, path, jit_compile):
        (path / "partial").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write_saved_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_saved_model(keras_model, tmp_path, "psp_fully")
    assert list((tmp_path / "psp_fully").iterdir()) == []
    assert not (tmp_path / "models.config").exists()


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", "12"])
def test_bad_names_refused(tmp_path, keras_model, name):
    with pytest.raises(ValueError, match="model name"):
        export_saved_model(keras_model, tmp_path, name)
