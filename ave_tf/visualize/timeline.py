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

SIZE_INCHES = (10.0, 2.8)


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


BAR_HEIGHT = 0.55
BAR_CENTRE = -0.12
"""Bars sit a little below each row's centre; the event labels go in the space above."""


def _draw_row(axes, y, classes, labels, colors, events):
    centre = y + BAR_CENTRE
    for t, (cls, label) in enumerate(zip(classes, labels, strict=True)):
        color = colors[cls]
        axes.add_patch(
            matplotlib.patches.Rectangle(
                (t, centre - BAR_HEIGHT / 2),
                1,
                BAR_HEIGHT,
                facecolor=color,
                edgecolor="white",
                linewidth=1.5,
            )
        )
        axes.text(
            t + 0.5,
            centre,
            label,
            ha="center",
            va="center",
            fontsize=7,
            color=figures.text_color(color),
        )
    top = centre + BAR_HEIGHT / 2 + 0.04
    for event in events:
        axes.plot([event.start + 0.05, event.end - 0.05], [top, top], color="black", linewidth=1)
        axes.text(
            (event.start + event.end) / 2,
            top + 0.03,
            event.describe(),
            ha="center",
            va="bottom",
            fontsize=7,
        )


def draw_timeline(timeline: Timeline, dpi: int = figures.DEFAULT_DPI):
    """Two rows of 10 coloured segment bars: ground truth (with the model's probability of
    the true class) and prediction (with its confidence); wrong segments are marked with x.
    The legend names every class drawn."""
    colors = figures.class_colors()
    figure = figures.new_figure(*SIZE_INCHES, dpi=dpi)
    axes = figure.add_axes((0.11, 0.38, 0.87, 0.48))
    rows = [("prediction", timeline.predicted, timeline.confidence, timeline.predicted_events)]
    if timeline.truth is not None:
        rows.insert(
            0, ("ground truth", timeline.truth, timeline.truth_probability, timeline.true_events)
        )
    ys = list(range(len(rows)))[::-1]
    for y, (_, classes, values, events) in zip(ys, rows, strict=True):
        _draw_row(axes, y, classes, [f"{v:.2f}" for v in values], colors, events)
    if timeline.truth is not None:
        wrong = np.flatnonzero(timeline.truth != timeline.predicted)
        axes.scatter(
            wrong + 0.5,
            np.full(wrong.shape, ys[-1] + BAR_CENTRE - 0.4),
            marker="x",
            color="red",
            s=18,
            clip_on=False,
        )
    axes.set_xlim(0, ave.NUM_SEGMENTS)
    axes.set_ylim(-0.55, len(rows) - 0.45)
    axes.set_yticks([y + BAR_CENTRE for y in ys], [name for name, *_ in rows])
    axes.set_xticks(range(ave.NUM_SEGMENTS + 1))
    axes.set_xlabel("time (s)", fontsize=8)
    axes.tick_params(labelsize=8, length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    title = f"{timeline.video_id}"
    if timeline.truth is not None:
        title += f": {timeline.correct}/{ave.NUM_SEGMENTS} segments correct"
    axes.set_title(title + "  (numbers: the model's probability of the drawn class)", fontsize=9)
    drawn = sorted(
        set(timeline.predicted.tolist())
        | set([] if timeline.truth is None else timeline.truth.tolist())
    )
    handles = [matplotlib.patches.Patch(color=colors[c], label=ave.CLASS_NAMES[c]) for c in drawn]
    figure.legend(
        handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7, frameon=False
    )
    return figure
