"""Attention: 7x7 maps per segment, frames from a folder, overlay."""

import numpy as np
import pytest
from PIL import Image

from ave_tf.visualize import attention, commands
from ave_tf.visualize.conftest import expected_pixels, make_options, png_size


def test_prepare_reshapes_row_major_like_avga_flattens():
    weights = np.zeros((10, 49))
    weights[:, 7 * 2 + 5] = 1.0  # row 2, column 5 of the 7x7 grid
    maps = attention.prepare_attention("v", weights).maps
    assert maps.shape == (10, 7, 7)
    assert (maps[:, 2, 5] == 1).all() and maps.sum() == 10


def test_prepare_refuses_wrong_shape():
    with pytest.raises(ValueError, match=r"visual_attention must be \(10, 49\)"):
        attention.prepare_attention("v", np.zeros((10, 50)))


def test_frame_nearest_each_segment_centre():
    assert attention.segment_frame_indices(10) == list(range(10))
    assert attention.segment_frame_indices(20) == list(range(1, 20, 2))
    assert attention.segment_frame_indices(3) == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]


def _write_frames(folder, count):
    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (64, 48), (20 * i, 100, 200)).save(folder / f"frame_{i:03d}.png")
    (folder / "notes.txt").write_text("not an image")


def test_load_frames_and_overlay(tmp_path):
    _write_frames(tmp_path / "frames", 30)
    frames = attention.load_frames(tmp_path / "frames", size=(32, 24))
    assert frames.shape == (10, 24, 32, 3) and frames.dtype == np.uint8
    assert frames[0, 0, 0, 0] == 20 * 1  # frame 1 is the centre of segment 0
    peak = np.zeros((7, 7))
    peak[0, 6] = 1.0
    heat = attention.upsample(peak, 24, 32)
    assert heat.max() == 1.0 and heat[0, -1] == heat.max() and heat[-1, 0] == 0.0
    blended = attention.overlay(frames[0], peak)
    assert blended.shape == (24, 32, 3) and 0 <= blended.min() and blended.max() <= 1


def test_missing_frames_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        attention.frame_files(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="holds no image"):
        attention.frame_files(tmp_path)


def test_command_strip_and_overlay(tmp_path, model_file, features_file):
    options = make_options(
        "attention", tmp_path / "strip", model=str(model_file), features=str(features_file)
    )
    (strip,) = commands.run(options)
    assert png_size(strip) == expected_pixels(attention.STRIP_INCHES)
    _write_frames(tmp_path / "frames", 12)
    options = make_options(
        "attention",
        tmp_path / "overlay",
        model=str(model_file),
        features=str(features_file),
        frames=str(tmp_path / "frames"),
        videos=(3,),
    )
    (overlaid,) = commands.run(options)
    assert overlaid.name == "attention_clip_3.png"
    assert png_size(overlaid) == expected_pixels(attention.OVERLAY_INCHES)
