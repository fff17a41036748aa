"""Tests of ave_tf.events: segment predictions -> events."""

import numpy as np
import pytest

from ave_tf import ave
from ave_tf.events import Event, format_timeline, segment_events


def _one_hot_probabilities(classes, confidence=0.9):
    probabilities = np.full((len(classes), ave.NUM_CLASSES), (1 - confidence) / 28)
    probabilities[np.arange(len(classes)), classes] = confidence
    return probabilities


def test_one_event_from_start():
    classes = [0] * 6 + [ave.BACKGROUND] * 4
    events = segment_events(classes, _one_hot_probabilities(classes))
    assert events == [Event(0, "Church bell", 0.0, 6.0, pytest.approx(0.9))]
    assert format_timeline(events) == "Church bell from 0 s to 6 s (confidence 0.90)"


def test_runs_split_on_class_change_and_background():
    classes = [28, 2, 2, 5, 5, 28, 2, 28, 28, 13]
    probabilities = _one_hot_probabilities(classes)
    probabilities[1, 2], probabilities[2, 2] = 0.6, 0.8
    events = segment_events(classes, probabilities)
    assert [(e.category, e.start, e.end) for e in events] == [
        (2, 1, 3),
        (5, 3, 5),
        (2, 6, 7),
        (13, 9, 10),
    ]
    assert events[0].confidence == pytest.approx(0.7)
    assert events[0].name == "Bark"


def test_all_background_and_segment_seconds():
    classes = [ave.BACKGROUND] * 10
    assert segment_events(classes, _one_hot_probabilities(classes)) == []
    assert format_timeline([], "vid") == "vid: no event"
    classes = [3] * 10
    (event,) = segment_events(classes, _one_hot_probabilities(classes), segment_seconds=0.5)
    assert (event.start, event.end) == (0.0, 5.0)


@pytest.mark.parametrize(
    "classes, probabilities, message",
    [
        ([[0]], np.zeros((1, 29)), "segment_classes must be"),
        ([0, 1], np.zeros((3, 29)), "segment_probabilities must be"),
        ([0, 29], np.zeros((2, 29)), r"must be in \[0, 29\)"),
    ],
)
def test_bad_shapes_raise(classes, probabilities, message):
    with pytest.raises(ValueError, match=message):
        segment_events(classes, probabilities)
