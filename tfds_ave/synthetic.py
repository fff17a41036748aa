"""A seeded, self-contained synthetic AVE: features that look like AVE where it matters for PSP.

No input files: every statistic below is a constant. What is modelled:

* the 28 categories with AVE's imbalance (``CATEGORY_COUNTS``) and AVE's joint distribution of
  event start/end (``SPAN_COUNTS``: 83 % event segments, 66 % full-length events, spans of
  2-9 s, one empty event in 4,143);
* audio like VGGish embeddings: non-negative, mostly in [0, 4.5], about two thirds exact zeros;
  each category lights up a sparse set of the 128 dimensions;
* visual like VGG19 pool5 maps after ReLU, (7, 7, 512) per segment: a per-video scene (weakly
  tied to the category), per-cell texture, and the category's object evidence in only a few
  neighbouring cells of the 49 (a blob whose place is fixed per video);
* background segments of event videos where only one modality shows the category (audible but
  not visible, or visible but silent), as AVE defines background;
* audio/visual misalignment: the audio evidence's onset/offset is shifted by one second in some
  videos, and unrelated sounds of other categories leak into some segments;
* background-only videos (the release's 178 "noisy" videos) for ``train_background``.

A single segment is therefore ambiguous; the video's category and the per-segment presence of
both modalities have to be read from context, which is what a temporal model (PSP) can use and
a per-segment linear classifier cannot. Everything is vectorised NumPy and deterministic given
``seed``: the same config always yields the same bytes.
"""

import dataclasses
import itertools
from collections.abc import Iterator

import numpy as np

from ave_tf import ave
from tfds_ave import annotations

# Videos per category in the real AVE Annotations.txt, indexed by category id. Measured once
# with `collections.Counter(line.split("&")[0] for line in open("Annotations.txt"))` on
# shared/data/ave/Annotations.txt (4,143 lines); they sum to 4,143.
CATEGORY_COUNTS = (
    188, 176, 171, 184, 188, 175, 178, 187, 172, 163, 182, 138, 102, 99,
    186, 176, 160, 183, 100, 83, 69, 160, 60, 64, 180, 109, 154, 156,
)  # fmt: skip

# (start, end, videos) of every event span in the real AVE Annotations.txt, measured with
# `collections.Counter((int(f[3]), int(f[4])) for f in (l.split("&") for l in lines))`.
SPAN_COUNTS = (
    (0, 0, 1), (0, 2, 54), (0, 3, 71), (0, 4, 83), (0, 5, 74), (0, 6, 91), (0, 7, 56),
    (0, 8, 49), (0, 9, 21), (0, 10, 2750), (1, 3, 9), (1, 4, 11), (1, 5, 8), (1, 6, 4),
    (1, 7, 9), (1, 8, 7), (1, 9, 2), (1, 10, 74), (2, 4, 9), (2, 5, 7), (2, 6, 11), (2, 7, 8),
    (2, 8, 11), (2, 9, 4), (2, 10, 60), (3, 5, 20), (3, 6, 15), (3, 7, 8), (3, 8, 6),
    (3, 9, 7), (3, 10, 72), (4, 6, 10), (4, 7, 12), (4, 8, 7), (4, 9, 6), (4, 10, 82),
    (5, 7, 9), (5, 8, 7), (5, 9, 8), (5, 10, 98), (6, 8, 17), (6, 9, 5), (6, 10, 92),
    (7, 9, 10), (7, 10, 92), (8, 10, 76),
)  # fmt: skip

# Background segments of event videos: which modality still shows the category.
P_AUDIO_ONLY = 0.35
P_VISUAL_ONLY = 0.35
# Per video boundary, probability that the audio evidence starts/ends one second off.
P_AUDIO_SHIFT = 0.3
# Per segment, probability that a sound of another category leaks in.
P_DISTRACTOR_SOUND = 0.25
# Per background-only video segment, probability that some category is seen (but not heard).
P_BACKGROUND_VISIBLE = 0.3

AUDIO_MAX = 4.5
_CELLS = ave.VISUAL_SHAPE[0] * ave.VISUAL_SHAPE[1]
_CHANNELS = ave.VISUAL_SHAPE[2]
_CHUNK = 32


@dataclasses.dataclass(frozen=True)
class SplitSizes:
    """Videos per split of a synthetic config."""

    train: int
    validation: int
    test: int
    train_background: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


SMALL = SplitSizes(train=320, validation=96, test=96, train_background=24)
"""The embedded default: builds in well under a minute."""

FULL = SplitSizes(train=3339, validation=402, test=402, train_background=178)
"""AVE-sized: the release's split sizes and its 178 background-only videos."""

_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2, "train_background": 3}


@dataclasses.dataclass(frozen=True)
class _Prototypes:
    audio: np.ndarray  # (28, 128) sparse, non-negative class sounds
    audio_background: np.ndarray  # (128,) ambient sound
    visual: np.ndarray  # (28, 512) sparse, non-negative object channels
    scene: np.ndarray  # (28, 512) class-typical scene


def prototypes_for(seed: int) -> _Prototypes:
    rng = np.random.default_rng([seed, 7919])
    categories = len(ave.CATEGORY_NAMES)
    audio_support = rng.random((categories, ave.AUDIO_DIM)) < 0.10
    audio = audio_support * rng.uniform(0.8, 1.6, (categories, ave.AUDIO_DIM))
    visual_support = rng.random((categories, _CHANNELS)) < 0.06
    visual = visual_support * rng.uniform(1.5, 3.0, (categories, _CHANNELS))
    return _Prototypes(
        audio=audio.astype(np.float32),
        audio_background=rng.normal(0.0, 0.3, ave.AUDIO_DIM).astype(np.float32),
        visual=visual.astype(np.float32),
        scene=rng.normal(0.0, 1.0, (categories, _CHANNELS)).astype(np.float32),
    )


def _draw_labels(rng: np.random.Generator, count: int) -> tuple[np.ndarray, ...]:
    """Categories and spans drawn from AVE's category and span frequencies."""
    category_p = np.asarray(CATEGORY_COUNTS, np.float64)
    category_p /= category_p.sum()
    categories = rng.choice(len(CATEGORY_COUNTS), size=count, p=category_p)
    spans = np.asarray(SPAN_COUNTS, np.int64)
    span_p = spans[:, 2] / spans[:, 2].sum()
    chosen = rng.choice(len(spans), size=count, p=span_p)
    return categories.astype(np.int64), spans[chosen, 0], spans[chosen, 1]


def _blob_masks(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 49) float masks of 2-6 neighbouring cells where the object is."""
    height, width = ave.VISUAL_SHAPE[:2]
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    centre_r = rng.integers(0, height, count)[:, None, None]
    centre_c = rng.integers(0, width, count)[:, None, None]
    extent_r = rng.integers(0, 2, count)[:, None, None]
    extent_c = rng.integers(0, 2, count)[:, None, None]
    inside = (
        (rows >= centre_r - extent_r)
        & (rows <= centre_r + extent_r)
        & (cols >= centre_c - extent_c)
        & (cols <= centre_c + extent_c)
    )
    # Thin out blobs larger than 6 cells: keep a random 60 % of each blob but always the centre.
    keep = rng.random(inside.shape) < 0.6
    centre = (rows == centre_r) & (cols == centre_c)
    return (inside & (keep | centre)).reshape(count, _CELLS).astype(np.float32)


def presence(
    rng: np.random.Generator, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment, whether the category is heard and whether it is seen: (n, 10) each."""
    count = len(starts)
    shift_start = rng.choice([-1, 1], count) * (rng.random(count) < P_AUDIO_SHIFT)
    shift_end = rng.choice([-1, 1], count) * (rng.random(count) < P_AUDIO_SHIFT)
    nonempty = ends > starts
    audio_start = np.where(nonempty, np.clip(starts + shift_start, 0, ave.NUM_SEGMENTS), starts)
    audio_end = np.where(nonempty, np.clip(ends + shift_end, 0, ave.NUM_SEGMENTS), ends)
    audio_end = np.maximum(audio_end, audio_start + nonempty)
    event = annotations.event_mask(starts, ends)
    audio_event = annotations.event_mask(audio_start, audio_end)
    outside = rng.random((count, ave.NUM_SEGMENTS))
    audio_only = ~event & (outside < P_AUDIO_ONLY)
    visual_only = ~event & (outside >= 1.0 - P_VISUAL_ONLY)
    heard = audio_event | audio_only
    # The visual evidence follows the labelled event; a segment labelled "event" whose audio
    # evidence was shifted away keeps its visual evidence (misalignment).
    seen = event | visual_only
    # A background segment must not show the category in both modalities.
    both = ~event & heard & seen
    seen = seen & ~both
    return heard.astype(np.float32), seen.astype(np.float32)


def video_features(
    rng: np.random.Generator,
    prototypes: _Prototypes,
    categories: np.ndarray,
    heard: np.ndarray,
    seen: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Audio (n, 10, 128) and visual (n, 10, 7, 7, 512) float32 features.

    ``categories`` may hold ``ave.BACKGROUND`` for background-only videos; their ``heard`` /
    ``seen`` then refer to a random category chosen here.
    """
    count = len(categories)
    segments = ave.NUM_SEGMENTS
    shown = np.where(
        categories == ave.BACKGROUND,
        rng.integers(0, len(ave.CATEGORY_NAMES), count),
        categories,
    )

    # Audio: ambient sound + noise + the category's sound when heard + leaking other sounds.
    loudness = rng.uniform(0.6, 1.2, (count, 1, 1)).astype(np.float32)
    strength = heard[..., None] * rng.uniform(0.5, 1.0, (count, segments, 1)).astype(np.float32)
    distractor = rng.integers(0, len(ave.CATEGORY_NAMES), (count, segments))
    leak = (rng.random((count, segments, 1)) < P_DISTRACTOR_SOUND) * rng.uniform(
        0.3, 0.8, (count, segments, 1)
    )
    audio = (
        -0.55
        + prototypes.audio_background
        + 0.35 * rng.standard_normal((count, 1, ave.AUDIO_DIM), dtype=np.float32)
        + 0.55 * rng.standard_normal((count, segments, ave.AUDIO_DIM), dtype=np.float32)
        + loudness * strength * prototypes.audio[shown][:, None, :]
        + leak.astype(np.float32) * prototypes.audio[distractor]
    )
    audio = np.clip(audio, 0.0, AUDIO_MAX)

    # Visual: scene (tied to the category for half of the videos) + cell texture + noise,
    # then the object's channels in a few cells when seen; ReLU like pool5.
    tied = (rng.random((count, 1)) < 0.5).astype(np.float32)
    scene = 0.5 * (
        tied * prototypes.scene[shown] + rng.standard_normal((count, _CHANNELS), dtype=np.float32)
    )
    texture = 0.4 * rng.standard_normal((count, _CELLS, _CHANNELS), dtype=np.float32)
    visual = rng.standard_normal((count, segments, _CELLS, _CHANNELS), dtype=np.float32)
    visual *= 0.6
    visual += (scene[:, None, :] + texture)[:, None, :, :]
    visual -= 0.9
    size = rng.uniform(0.5, 1.0, (count, segments)).astype(np.float32) * seen
    blob = _blob_masks(rng, count)
    visual += (size[:, :, None] * blob[:, None, :])[..., None] * prototypes.visual[shown][
        :, None, None, :
    ]
    np.maximum(visual, 0.0, out=visual)
    return audio.astype(np.float32), visual.reshape((count, segments) + ave.VISUAL_SHAPE)


def generate(split: str, size: int, seed: int = 0) -> Iterator[tuple[str, dict]]:
    """Yields ``(video_id, example)`` for one synthetic split.

    Args:
        split: ``train``, ``validation``, ``test`` or ``train_background`` (background-only
            videos, as the release's noisy set).
        size: number of videos.
        seed: global seed; the output depends only on ``(split, size, seed)``.

    Yields:
        Examples with the features of ``tfds_ave`` (numpy arrays; ``audio`` (10, 128) and
        ``visual`` (10, 7, 7, 512) float32).
    """
    if split not in _SPLIT_IDS:
        raise ValueError(f"unknown synthetic split {split!r}; expected one of {list(_SPLIT_IDS)}")
    if size < 0:
        raise ValueError(f"size must be >= 0; got {size}")
    prototypes = prototypes_for(seed)
    split_id = _SPLIT_IDS[split]
    for first in range(0, size, _CHUNK):
        # Always draw a whole chunk, so a smaller size yields a prefix of a larger one.
        count = _CHUNK
        rng = np.random.default_rng([seed, split_id, first])
        if split == "train_background":
            categories = np.full(count, ave.BACKGROUND, np.int64)
            starts = np.zeros(count, np.int64)
            ends = np.zeros(count, np.int64)
            seen = (rng.random((count, ave.NUM_SEGMENTS)) < P_BACKGROUND_VISIBLE).astype(np.float32)
            heard = np.zeros_like(seen)
        else:
            categories, starts, ends = _draw_labels(rng, count)
            heard, seen = presence(rng, starts, ends)
        audio, visual = video_features(rng, prototypes, categories, heard, seen)
        examples = annotations.label_fields(categories, starts, ends, audio=audio, visual=visual)
        for offset, example in enumerate(itertools.islice(examples, size - first)):
            video_id = f"syn{split_id}{first + offset:07d}"
            yield video_id, {"video_id": video_id, **example}
