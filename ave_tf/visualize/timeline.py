"""Timeline: ground truth vs prediction per segment (the paper's Fig. 4, left).

Events (runs of one class) come from ``ave_tf.events.segment_events``, the same function the
prediction CLI and the evaluation use, so the labelled spans mean the same thing everywhere.
"""

import dataclasses

import matplotlib.patches
import numpy as np

from ave_tf import ave
from ave_tf.events import Event, segment_events
from ave_tf.visualize import figures


@dataclasses.dataclass(frozen=True)
class Timeline:
    """What a timeline figure draws for one video.

    Attributes:
        video_id: the video's id.
        predicted: (10,) predicted class per segment.
        confidence: (10,) probability of the predicted class.
        truth: (10,) true class per segment, or None when unknown.
        truth_probability: (10,) probability the model gives the true class, or None.
        predicted_events: the predicted events (confidence: mean probability of the class).
        true_events: the true events (confidence: the model's mean probability of the true
            class over the event), or None.
    """

    video_id: str
    predicted: np.ndarray
    confidence: np.ndarray
    truth: np.ndarray | None
    truth_probability: np.ndarray | None
    predicted_events: tuple[Event, ...] = ()
    true_events: tuple[Event, ...] | None = None

    @property
    def correct(self) -> int | None:
        """Segments predicted right, or None without ground truth."""
        return None if self.truth is None else int((self.truth == self.predicted).sum())


def prepare_timeline(video_id, segment_probabilities, segment_classes=None, segment_labels=None):
    """Arrays of one video's timeline.

    Args:
        video_id: the video's id.
        segment_probabilities: (10, 29) class probabilities per segment.
        segment_classes: (10,) predicted classes (default: argmax of the probabilities).
        segment_labels: (10,) true classes, or None.

    Returns:
        A ``Timeline``.
    """
    probabilities = np.asarray(segment_probabilities, dtype=np.float64)
    if probabilities.shape != (ave.NUM_SEGMENTS, ave.NUM_CLASSES):
        raise ValueError(
            f"segment_probabilities must be ({ave.NUM_SEGMENTS}, {ave.NUM_CLASSES}); "
            f"got {probabilities.shape}"
        )
    predicted = (
        probabilities.argmax(-1) if segment_classes is None else np.asarray(segment_classes)
    ).astype(np.int64)
    segments = np.arange(ave.NUM_SEGMENTS)
    truth = truth_probability = true_events = None
    if segment_labels is not None:
        truth = np.asarray(segment_labels).astype(np.int64)
        truth_probability = probabilities[segments, truth]
        true_events = tuple(segment_events(truth, probabilities))
    return Timeline(
        str(video_id),
        predicted,
        probabilities[segments, predicted],
        truth,
        truth_probability,
        tuple(segment_events(predicted, probabilities)),
        true_events,
    )


WIDTH_INCHES = 10.0
"""The figure's width; its height is what the rows, their event labels and the legend need."""
AXES_LEFT_INCHES = 1.1  # room for the row names
AXES_RIGHT_INCHES = 0.2
BAR_INCHES = 0.28
MARKS_INCHES = 0.16  # below the prediction row: the x of each wrong segment
BRACKET_GAP_INCHES = 0.04  # bar top to the line under an event's label
LABEL_GAP_INCHES = 0.03  # that line to the label
LEVEL_GAP_INCHES = 0.02  # between labels stacked because they would overlap
ROW_GAP_INCHES = 0.08
MARGIN_INCHES = 0.06  # above the title and below the legend
LEGEND_GAP_INCHES = 0.04  # below the x-axis label
LABEL_FONTSIZE = 7


def label_levels(spans, gap: float = 0.0) -> list[int]:
    """A level per label so that labels on one level do not overlap.

    Args:
        spans: (left, right) of each label, in time order of their events.
        gap: the least distance between two labels on one level.

    Returns:
        The lowest free level (0, 1, ...) of each label, in the order of ``spans``.
    """
    ends: list[float] = []  # right edge of the last label on each level
    levels = []
    for left, right in spans:
        level = next((i for i, end in enumerate(ends) if end + gap <= left), len(ends))
        if level == len(ends):
            ends.append(right)
        else:
            ends[level] = right
        levels.append(level)
    return levels


def _place_labels(texts, events, inches_per_second: float, renderer):
    """Moves each label over its event, inside [0, 10] s; returns their levels and height.

    A label is centred over its event unless that would cross an end of the time axis, then it
    is shifted inward; labels that would overlap go on levels above one another.
    """
    spans = []
    height = 0.0
    for text, event in zip(texts, events, strict=True):
        extent = text.get_window_extent(renderer)
        width = extent.width / renderer.dpi / inches_per_second  # seconds
        height = max(height, extent.height / renderer.dpi)
        centre = (event.start + event.end) / 2
        left = min(max(centre - width / 2, 0.0), max(ave.NUM_SEGMENTS - width, 0.0))
        text.set_x(left + width / 2)
        spans.append((left, left + width))
    return label_levels(spans, gap=0.1 / inches_per_second), height


def _draw_row(axes, bottom, classes, values, colors, events, inches_per_second, renderer):
    """One row: its bars from ``bottom`` (inches), then the labelled events above them.

    Returns:
        The top of the row (inches).
    """
    for t, (cls, value) in enumerate(zip(classes, values, strict=True)):
        color = colors[cls]
        axes.add_patch(
            matplotlib.patches.Rectangle(
                (t, bottom),
                1,
                BAR_INCHES,
                facecolor=color,
                edgecolor="white",
                linewidth=1.5,
            )
        )
        axes.text(
            t + 0.5,
            bottom + BAR_INCHES / 2,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=LABEL_FONTSIZE,
            color=figures.text_color(color),
        )
    bracket = bottom + BAR_INCHES + BRACKET_GAP_INCHES
    texts = [
        axes.text(0, 0, event.describe(), ha="center", va="bottom", fontsize=LABEL_FONTSIZE)
        for event in events
    ]
    levels, height = _place_labels(texts, events, inches_per_second, renderer)
    for event, text, level in zip(events, texts, levels, strict=True):
        axes.plot([event.start + 0.05, event.end - 0.05], [bracket, bracket], color="black", lw=1)
        text.set_y(bracket + LABEL_GAP_INCHES + level * (height + LEVEL_GAP_INCHES))
    rows_of_labels = max(levels, default=0) + 1  # rows without events keep one row's room
    return bracket + LABEL_GAP_INCHES + rows_of_labels * (height + LEVEL_GAP_INCHES)


def _title(timeline: Timeline) -> str:
    video_id = timeline.video_id if len(timeline.video_id) <= 60 else timeline.video_id[:59] + "…"
    title = video_id
    if timeline.truth is not None:
        title += f": {timeline.correct}/{ave.NUM_SEGMENTS} segments correct"
    return title + "  (numbers: the model's probability of the drawn class)"


def draw_timeline(timeline: Timeline, dpi: int = figures.DEFAULT_DPI):
    """Two rows of 10 coloured segment bars: ground truth (with the model's probability of
    the true class) and prediction (with its confidence); wrong segments are marked with x.
    Each event is labelled above its bars, inside the time axis; the legend names every class
    drawn. The figure is ``WIDTH_INCHES`` wide and as tall as its parts need."""
    colors = figures.class_colors()
    figure = figures.new_figure(WIDTH_INCHES, 3.0, dpi=dpi)  # the height is set at the end
    renderer = figure.canvas.get_renderer()
    axes_width = WIDTH_INCHES - AXES_LEFT_INCHES - AXES_RIGHT_INCHES
    inches_per_second = axes_width / ave.NUM_SEGMENTS
    axes = figure.add_axes((0, 0, 1, 1))
    rows = [("prediction", timeline.predicted, timeline.confidence, timeline.predicted_events)]
    if timeline.truth is not None:
        rows.append(
            ("ground truth", timeline.truth, timeline.truth_probability, timeline.true_events)
        )
    # Inside the axes, y is in inches from its bottom: the rows go up from the marks.
    top = 0.0 if timeline.truth is None else MARKS_INCHES
    centres = []
    for _, classes, values, events in rows:
        centres.append(top + BAR_INCHES / 2)
        top = _draw_row(axes, top, classes, values, colors, events, inches_per_second, renderer)
        top += ROW_GAP_INCHES
    axes_height = top - ROW_GAP_INCHES
    if timeline.truth is not None:
        wrong = np.flatnonzero(timeline.truth != timeline.predicted)
        axes.scatter(
            wrong + 0.5, np.full(wrong.shape, MARKS_INCHES / 2), marker="x", color="red", s=18
        )
    axes.set_xlim(0, ave.NUM_SEGMENTS)
    axes.set_ylim(0, axes_height)
    axes.set_yticks(centres, [name for name, *_ in rows])
    axes.set_xticks(range(ave.NUM_SEGMENTS + 1))
    axes.set_xlabel("time (s)", fontsize=8)
    axes.tick_params(labelsize=8, length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    title = axes.set_title(_title(timeline), fontsize=9)
    room = axes_width + 2 * (AXES_RIGHT_INCHES - MARGIN_INCHES)  # centred over the axes
    if title.get_window_extent(renderer).width / dpi > room:
        title.set_text(title.get_text().replace("  (", "\n(", 1))
    drawn = sorted(
        set(timeline.predicted.tolist())
        | set([] if timeline.truth is None else timeline.truth.tolist())
    )
    handles = [matplotlib.patches.Patch(color=colors[c], label=ave.CLASS_NAMES[c]) for c in drawn]
    legend = figure.legend(
        handles=handles, loc="upper center", ncol=min(len(handles), 5), fontsize=7, frameon=False
    )
    _fit_height(figure, axes, legend, axes_height, renderer)
    return figure


def _fit_height(figure, axes, legend, axes_height: float, renderer) -> None:
    """Sets the figure's height to its parts, top to bottom: title, axes (``axes_height``
    inches: its y unit is an inch), tick labels and x label, legend; no empty band between."""
    dpi = figure.dpi
    width = figure.get_size_inches()[0]
    legend_height = legend.get_window_extent(renderer).height / dpi
    placed = axes.get_window_extent(renderer)
    around = axes.get_tightbbox(renderer)  # title, tick labels, x label: fixed in points
    above = (around.y1 - placed.y1) / dpi
    below = (placed.y0 - around.y0) / dpi
    bottom = MARGIN_INCHES + legend_height + LEGEND_GAP_INCHES + below
    height = bottom + axes_height + above + MARGIN_INCHES
    figure.set_size_inches(width, height)
    axes.set_position(
        (
            AXES_LEFT_INCHES / width,
            bottom / height,
            (width - AXES_LEFT_INCHES - AXES_RIGHT_INCHES) / width,
            axes_height / height,
        )
    )
    legend.set_bbox_to_anchor((0.5, (MARGIN_INCHES + legend_height) / height), figure.transFigure)
