"""Events from per-segment predictions: runs of one event class over consecutive segments.

    events = segment_events(segment_classes, segment_probabilities)
    print(format_timeline(events))   # "Church bell from 0 s to 6 s (confidence 0.91)"

Evaluation, visualisation and the prediction CLI all use `segment_events`, so an "event" means
the same thing everywhere: a maximal run of consecutive segments predicted as the same
non-background class. Segment `t` covers `[t * segment_seconds, (t + 1) * segment_seconds)`.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np

from ave_tf import ave


@dataclasses.dataclass(frozen=True)
class Event:
    """One audio-visual event on a video's timeline.

    Attributes:
        category: class id, 0..27.
        name: the category's name, e.g. "Church bell".
        start: start time in seconds (inclusive).
        end: end time in seconds (exclusive).
        confidence: mean probability of `category` over the event's segments.
    """

    category: int
    name: str
    start: float
    end: float
    confidence: float

    def to_dict(self) -> dict:
        """JSON-safe dict of the fields."""
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """Human text, e.g. "Church bell from 0 s to 6 s (confidence 0.91)"."""
        return (
            f"{self.name} from {self.start:g} s to {self.end:g} s "
            f"(confidence {self.confidence:.2f})"
        )


def segment_events(
    segment_classes: Sequence[int] | np.ndarray,
    segment_probabilities: Sequence[Sequence[float]] | np.ndarray,
    *,
    segment_seconds: float = 1.0,
    background: int = ave.BACKGROUND,
    class_names: Sequence[str] = ave.CLASS_NAMES,
) -> list[Event]:
    """Turns one video's segment predictions into its events, in time order.

    Args:
        segment_classes: (segments,) predicted class per segment.
        segment_probabilities: (segments, classes) probabilities per segment.
        segment_seconds: length of one segment in seconds (AVE: 1).
        background: the class id that means "no event" (AVE: 28).
        class_names: names indexed by class id.

    Returns:
        One `Event` per maximal run of equal, non-background classes.

    Raises:
        ValueError: shapes disagree or a class id is out of range (the message names them).
    """
    classes = np.asarray(segment_classes)
    probabilities = np.asarray(segment_probabilities, dtype=np.float64)
    if classes.ndim != 1:
        raise ValueError(f"segment_classes must be (segments,); got shape {classes.shape}")
    if probabilities.ndim != 2 or probabilities.shape[0] != classes.shape[0]:
        raise ValueError(
            f"segment_probabilities must be (segments={classes.shape[0]}, classes); "
            f"got shape {probabilities.shape}"
        )
    num_classes = probabilities.shape[1]
    if classes.size and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"segment_classes must be in [0, {num_classes}); got {classes.tolist()}")
    events = []
    start = 0
    for t in range(1, classes.size + 1):
        if t < classes.size and classes[t] == classes[start]:
            continue
        category = int(classes[start])
        if category != background:
            events.append(
                Event(
                    category=category,
                    name=class_names[category],
                    start=start * segment_seconds,
                    end=t * segment_seconds,
                    confidence=float(probabilities[start:t, category].mean()),
                )
            )
        start = t
    return events


def format_timeline(events: Sequence[Event], video_id: str | None = None) -> str:
    """One line per event (or "no event"), prefixed by the video id when given."""
    prefix = f"{video_id}: " if video_id else ""
    if not events:
        return f"{prefix}no event"
    return "\n".join(prefix + event.describe() for event in events)
