"""Shared figure plumbing: headless backend, colours, atomic PNG/SVG writing."""

import matplotlib
import numpy as np
import pytest

from ave_tf import ave
from ave_tf.visualize import figures
from ave_tf.visualize.conftest import png_size


def test_backend_is_headless():
    assert matplotlib.get_backend().lower() == "agg"


def test_every_class_has_its_own_colour_and_background_is_grey():
    colors = figures.class_colors()
    assert colors.shape == (ave.NUM_CLASSES, 4)
    assert len({tuple(c) for c in colors}) == ave.NUM_CLASSES
    red, green, blue, _ = colors[ave.BACKGROUND]
    assert red == green == blue


def test_save_figure_writes_png_and_svg_of_the_figure_size(tmp_path):
    figure = figures.new_figure(3.0, 2.0, dpi=40)
    figure.add_subplot().plot([0, 1], [1, 0])
    written = figures.save_figure(figure, tmp_path / "new", "plot", svg=True)
    assert [p.name for p in written] == ["plot.png", "plot.svg"]
    assert png_size(written[0]) == (120, 80)
    assert written[1].read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["plot.png", "plot.svg"]


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    figure = figures.new_figure(1.0, 1.0)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        figures.save_figure(figure, tmp_path, "plot")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "text, stem", [("clip/0", "clip_0"), ("-_a b?c", "-_a_b_c"), ("...", "video")]
)
def test_file_stem(text, stem):
    assert figures.file_stem(text) == stem


def test_short_name_and_text_colour():
    assert figures.short_name(1) == "Male speech"
    assert figures.text_color((1, 1, 1)) == "black"
    assert figures.text_color(np.array([0, 0, 0.3])) == "white"
