"""Timeline: prepared arrays and the figure from a .keras model and from a SavedModel."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ave_tf import ave
from ave_tf.events import segment_events
from ave_tf.videos_test import build_dummy_split
from ave_tf.visualize import commands, timeline
from ave_tf.visualize.conftest import assert_texts_inside_and_apart, make_options, png_size


def _assert_timeline_png(path, dpi=50):
    """As wide as ``WIDTH_INCHES``; as tall as two rows, their labels and a legend need."""
    width, height = png_size(path)
    assert width == round(timeline.WIDTH_INCHES * dpi) and 1.5 * dpi < height < 4 * dpi


def _probabilities(classes, seed=0):
    """(10, 29) probabilities whose argmax is ``classes``."""
    rng = np.random.default_rng(seed)
    probabilities = 0.3 * rng.dirichlet(np.ones(ave.NUM_CLASSES), size=ave.NUM_SEGMENTS)
    probabilities[np.arange(ave.NUM_SEGMENTS), classes] += 0.7
    return probabilities


BG = ave.BACKGROUND
LAYOUT_CASES = {
    # the last segment alone: its label centred over 9..10 s would cross the right edge
    "event in the last second": ([6] * 8 + [BG, 6], [BG] * 9 + [6]),
    "event in the first second": ([25, BG] + [3] * 8, [25] + [BG] * 9),
    # ten one-second events: their labels are wider than their events and would overlap
    "many short events": ([0, 15, 2, 15, 4, 5, 15, 7, 8, 15], [15] * 10),
    "long names, no ground truth": ([13, 13, BG, 14, BG, 13, BG, 14, 13, 14], None),
}


def test_prepare_takes_the_argmax_and_the_probabilities_of_the_drawn_classes():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(ave.NUM_CLASSES), size=ave.NUM_SEGMENTS)
    labels = np.array([28, 28, 3, 3, 3, 3, 3, 28, 28, 28])
    prepared = timeline.prepare_timeline("v", probabilities, segment_labels=labels)
    np.testing.assert_array_equal(prepared.predicted, probabilities.argmax(-1))
    np.testing.assert_allclose(prepared.confidence, probabilities.max(-1))
    np.testing.assert_allclose(prepared.truth_probability, probabilities[np.arange(10), labels])
    assert prepared.correct == int((probabilities.argmax(-1) == labels).sum())
    (event,) = prepared.true_events
    assert (event.category, event.start, event.end) == (3, 2.0, 7.0)
    assert event.confidence == pytest.approx(probabilities[2:7, 3].mean())


def test_predicted_events_come_from_ave_tf_events():
    classes = np.array([28, 5, 5, 5, 28, 28, 7, 7, 28, 28])
    probabilities = np.full((10, 29), 0.01)
    probabilities[np.arange(10), classes] = np.linspace(0.5, 0.9, 10)
    prepared = timeline.prepare_timeline("v", probabilities)
    assert prepared.predicted_events == tuple(segment_events(classes, probabilities))
    assert [e.describe().split(" (")[0] for e in prepared.predicted_events] == [
        "Female speech, woman speaking from 1 s to 4 s",
        "Violin, fiddle from 6 s to 8 s",
    ]


def test_prepare_without_labels_and_with_given_classes():
    probabilities = np.full((10, 29), 1 / 29)
    prepared = timeline.prepare_timeline("v", probabilities, segment_classes=np.arange(10))
    np.testing.assert_array_equal(prepared.predicted, np.arange(10))
    assert prepared.truth is None and prepared.correct is None


def test_prepare_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"segment_probabilities must be \(10, 29\)"):
        timeline.prepare_timeline("v", np.zeros((10, 28)))


def test_label_levels_stack_only_overlapping_labels():
    spans = [(0, 3), (2, 4), (3.5, 6), (4.5, 7), (7, 8)]
    assert timeline.label_levels(spans) == [0, 1, 0, 1, 0]
    assert timeline.label_levels(spans, gap=1.5) == [0, 1, 2, 0, 1]
    assert timeline.label_levels([]) == []


@pytest.mark.parametrize("dpi", [50, 80, 100])
@pytest.mark.parametrize("case", sorted(LAYOUT_CASES))
def test_every_text_is_inside_the_figure_apart_and_over_its_event(case, dpi):
    """Event labels lie over their events and inside the time axis; no text is cut off at
    the figure's edge or drawn over another."""
    predicted, truth = LAYOUT_CASES[case]
    video_id = "a_video_id_longer_than_the_title_has_room_for_" * 3 if truth is None else "v"
    prepared = timeline.prepare_timeline(video_id, _probabilities(predicted), predicted, truth)
    figure = timeline.draw_timeline(prepared, dpi=dpi)
    try:
        assert_texts_inside_and_apart(figure)
        axes = figure.axes[0]
        renderer = figure.canvas.get_renderer()
        events = prepared.predicted_events + (prepared.true_events or ())
        labels = {text.get_text(): text for text in axes.texts}
        time_axis = axes.get_window_extent(renderer)
        for event in events:
            box = labels[event.describe()].get_window_extent(renderer)
            start, end = (axes.transData.transform((x, 0))[0] for x in (event.start, event.end))
            assert box.x0 < end and box.x1 > start, f"{event.describe()} is not over its event"
            inside = time_axis.x0 - 0.5 <= box.x0 and box.x1 <= time_axis.x1 + 0.5
            assert inside, f"{event.describe()} {box.extents} leaves the time axis"
    finally:
        plt.close(figure)


@pytest.mark.parametrize("case", sorted(LAYOUT_CASES))
def test_no_empty_band_around_title_axes_and_legend(case):
    """Top to bottom: title, rows, tick labels and x label, legend, each within 0.15 in of
    the next (the figure is as tall as they need)."""
    predicted, truth = LAYOUT_CASES[case]
    prepared = timeline.prepare_timeline("v", _probabilities(predicted), predicted, truth)
    figure = timeline.draw_timeline(prepared, dpi=80)
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        around = figure.axes[0].get_tightbbox(renderer)
        (legend,) = figure.legends
        legend_box = legend.get_window_extent(renderer)
        height = figure.canvas.get_width_height()[1]
        gaps = {
            "above the title": (height - around.y1) / 80,
            "between the x label and the legend": (around.y0 - legend_box.y1) / 80,
            "below the legend": legend_box.y0 / 80,
        }
        wrong = {where: f"{gap:.2f} in" for where, gap in gaps.items() if not 0 <= gap <= 0.15}
        assert not wrong, wrong
    finally:
        plt.close(figure)


def test_command_from_keras_model(tmp_path, model_file, features_file):
    options = make_options(
        "timeline", tmp_path, model=str(model_file), features=str(features_file), videos=(0, 2)
    )
    written = commands.run(options)
    assert [p.name for p in written] == ["timeline_clip_0.png", "timeline_clip_2.png"]
    for path in written:
        _assert_timeline_png(path)


@pytest.mark.slow
def test_command_from_an_export_root(tmp_path, model_file, features_file):
    """A versioned export root (its newest SavedModel, via ave_tf.predictors) draws too."""
    from ave_tf.export import export_saved_model
    from ave_tf.predictors import load_keras_model

    export_saved_model(load_keras_model(model_file), tmp_path, "psp")
    options = make_options(
        "timeline", tmp_path / "out", model=str(tmp_path / "psp"), features=str(features_file)
    )
    (path,) = commands.run(options)
    _assert_timeline_png(path)


def test_timeline_from_a_tfds_split(tmp_path, tmp_path_factory, model_file):
    data_dir, _ = build_dummy_split(tmp_path_factory)
    options = make_options(
        "timeline",
        tmp_path,
        model=str(model_file),
        dataset="features",
        split="test[:1]",
        data_dir=data_dir,
    )
    (path,) = commands.run(options)
    assert path.name.startswith("timeline_")
    _assert_timeline_png(path)
