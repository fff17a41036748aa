"""Parses AVE's ``Annotations.txt`` and derives every label the release ships separately.

``Annotations.txt`` has one line per video, ``Category&YouTubeID&Quality&Start&End``; the
event covers segments ``[Start, End)`` and every other segment is background. Line *i* is
row *i* of every feature file. From these lines alone this module derives what the release
also distributes as HDF5 files:

* segment labels (``right_labels.h5`` as class ids), shape ``(videos, 10)``;
* the event mask (``labels_closs.h5``), shape ``(videos, 10)``;
* video labels (``mil_labels.h5``: one-hot of the video's category, never background),
  shape ``(videos, 29)``;
* the weak target ``prob_label`` (``prob_label.h5``: mean of the 10 segment one-hots,
  background included), shape ``(videos, 29)``.

The real release has one video (line 27, ``VWi2ENBuTbw``) written ``0&0``: an empty event.
``start == end`` is therefore accepted as "no event segment"; ``start > end`` is an error.
"""

import dataclasses
from collections.abc import Iterator

import numpy as np

from ave_tf import ave

_HEADER_PREFIX = "category&"


class AnnotationError(ValueError):
    """A malformed line of ``Annotations.txt``; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class VideoAnnotation:
    """One line of ``Annotations.txt``.

    Attributes:
        category: class id of the event category, 0..27 (``ave.CATEGORY_NAMES``).
        video_id: the YouTube id.
        quality: the release's quality field (``good`` throughout AVE).
        start: first event segment.
        end: one past the last event segment (``start == end``: no event segment).
        line: 1-based line number in the annotation file.
    """

    category: int
    video_id: str
    quality: str
    start: int
    end: int
    line: int


def parse_annotations(text: str, source: str = "Annotations.txt") -> list[VideoAnnotation]:
    """Parses the text of an annotation file.

    Args:
        text: the file's content. A header line starting with ``Category&`` and blank lines
            are skipped (line numbers still count them).
        source: file name used in error messages.

    Returns:
        One ``VideoAnnotation`` per video, in file order.

    Raises:
        AnnotationError: naming ``source``, the line number and what was expected, for a
            wrong field count, an unknown category, a non-integer or out-of-range
            start/end or ``start > end``. Repeated YouTube ids are allowed: the real release
            annotates 45 videos twice (e.g. ``-ccciEuH9FE`` as male and as female speech).
    """
    category_ids = {name: index for index, name in enumerate(ave.CATEGORY_NAMES)}
    videos = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or (number == 1 and line.lower().startswith(_HEADER_PREFIX)):
            continue
        where = f"{source} line {number}"
        fields = line.split("&")
        if len(fields) != 5:
            raise AnnotationError(
                f"{where}: expected 5 '&'-separated fields "
                f"Category&YouTubeID&Quality&Start&End, got {len(fields)}: {line!r}"
            )
        name, video_id, quality, start_text, end_text = (field.strip() for field in fields)
        if name not in category_ids:
            raise AnnotationError(
                f"{where}: unknown category {name!r}; expected one of the 28 AVE categories "
                f"({', '.join(ave.CATEGORY_NAMES)})"
            )
        if not video_id:
            raise AnnotationError(f"{where}: empty YouTube id")
        try:
            start, end = int(start_text), int(end_text)
        except ValueError:
            raise AnnotationError(
                f"{where}: start and end must be integers, got {start_text!r} and {end_text!r}"
            ) from None
        if not 0 <= start <= ave.NUM_SEGMENTS or not 0 <= end <= ave.NUM_SEGMENTS:
            raise AnnotationError(
                f"{where}: start={start}, end={end} must lie in [0, {ave.NUM_SEGMENTS}]"
            )
        if start > end:
            raise AnnotationError(
                f"{where}: start={start} must be < end={end} "
                "(start == end is read as a video without event segments)"
            )
        videos.append(VideoAnnotation(category_ids[name], video_id, quality, start, end, number))
    if not videos:
        raise AnnotationError(f"{source}: no annotation lines")
    return videos


def event_mask(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """1 where a segment is inside ``[start, end)``.

    Args:
        starts, ends: int arrays of shape ``(videos,)``.

    Returns:
        bool array ``(videos, 10)`` (the release's ``labels_closs.h5`` as booleans).
    """
    segments = np.arange(ave.NUM_SEGMENTS)
    return (segments >= np.asarray(starts)[:, None]) & (segments < np.asarray(ends)[:, None])


def segment_labels(
    categories: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    num_classes: int = ave.NUM_CLASSES,
) -> np.ndarray:
    """Class id of every segment: the category inside the event, background elsewhere.

    Args:
        categories, starts, ends: int arrays ``(videos,)``.
        num_classes: classes including background, which is the last one (AVE: 29, so 28).

    Returns:
        int64 array ``(videos, 10)``.
    """
    mask = event_mask(starts, ends)
    return np.where(mask, np.asarray(categories, np.int64)[:, None], num_classes - 1)


def video_labels(categories: np.ndarray, num_classes: int = ave.NUM_CLASSES) -> np.ndarray:
    """Multi-hot video labels: the video's class (the release's ``mil_labels.h5``).

    A video whose category is ``ave.BACKGROUND`` (the noisy background-only videos) gets the
    background one-hot (the release's ``labels_noisy.h5``).

    Returns:
        float32 array ``(videos, num_classes)``.
    """
    return np.eye(num_classes, dtype=np.float32)[np.asarray(categories, np.int64)]


def prob_labels(labels: np.ndarray, num_classes: int = ave.NUM_CLASSES) -> np.ndarray:
    """The weak target: mean over the segments of the one-hot segment labels.

    Args:
        labels: int array ``(videos, 10)`` of segment class ids.

    Returns:
        float32 array ``(videos, num_classes)`` whose rows sum to 1 (the release's
        ``prob_label.h5``).
    """
    one_hot = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, np.int64)]
    return one_hot.mean(axis=1)


def as_arrays(videos: list[VideoAnnotation]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(categories, starts, ends)`` int64 arrays of shape ``(videos,)``."""
    categories = np.array([video.category for video in videos], np.int64)
    starts = np.array([video.start for video in videos], np.int64)
    ends = np.array([video.end for video in videos], np.int64)
    return categories, starts, ends


def label_fields(
    categories: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    num_classes: int = ave.NUM_CLASSES,
    **features: np.ndarray,
) -> Iterator[dict]:
    """Per-video label features (and the given per-video feature arrays) as example dicts.

    Args:
        categories, starts, ends: int arrays ``(n,)``; category ``num_classes - 1``
            (``ave.BACKGROUND``) marks a background-only video (then ``start == end``).
        num_classes: classes including background, which is the last one (AVE: 29).
        **features: arrays whose first axis is the video, added to each example as-is.
    """
    labels = segment_labels(categories, starts, ends, num_classes)
    videos = video_labels(categories, num_classes)
    probs = prob_labels(labels, num_classes)
    for index in range(len(categories)):
        example = {
            "segment_labels": labels[index],
            "category": int(categories[index]),
            "event_start": int(starts[index]),
            "event_end": int(ends[index]),
            "video_label": videos[index],
            "prob_label": probs[index],
        }
        for name, values in features.items():
            example[name] = values[index]
        yield example
