"""Label derivation: unit cases and a check against the real AVE label files in ../shared."""

import pathlib

import h5py
import numpy as np
import pytest

from ave_tf import ave
from tfds_ave import annotations, release

_REPO = pathlib.Path(__file__).resolve().parents[1]
# ../shared/data/ave from the repo root (or from a folder above it, for git worktrees).
SHARED = next(
    (
        parent / "shared" / "data" / "ave"
        for parent in _REPO.parents
        if (parent / "shared" / "data" / "ave" / "Annotations.txt").exists()
    ),
    _REPO.parent / "shared" / "data" / "ave",
)
needs_shared = pytest.mark.skipif(
    not (SHARED / "Annotations.txt").exists(),
    reason=f"real AVE label files not found at {SHARED} (../shared/data/ave from the repo root)",
)


def test_parse_skips_header_and_blank_lines_and_keeps_line_numbers():
    text = "Category&VideoID&Quality&StartTime&EndTime\nBark&abc&good&2&5\n\nCat&xyz&good&0&0\n"
    videos = annotations.parse_annotations(text)
    assert [(v.category, v.video_id, v.start, v.end, v.line) for v in videos] == [
        (2, "abc", 2, 5, 2),
        (22, "xyz", 0, 0, 4),
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("Barking&abc&good&2&5", "unknown category 'Barking'"),
        ("Bark&abc&good&5&2", "start=5 must be < end=2"),
        ("Bark&abc&good&2&11", "must lie in [0, 10]"),
        ("Bark&abc&good&two&5", "must be integers"),
        ("Bark&abc&good&2", "expected 5 '&'-separated fields"),
    ],
)
def test_malformed_line_names_file_and_line(line, message):
    text = "Bark&ok1&good&0&10\n" + line + "\n"
    with pytest.raises(annotations.AnnotationError) as error:
        annotations.parse_annotations(text, "ann.txt")
    assert "ann.txt line 2" in str(error.value)
    assert message in str(error.value)


def test_derived_labels_by_hand():
    labels = annotations.segment_labels(np.array([2, 5]), np.array([3, 0]), np.array([5, 0]))
    np.testing.assert_array_equal(labels[0], [28, 28, 28, 2, 2, 28, 28, 28, 28, 28])
    np.testing.assert_array_equal(labels[1], [28] * 10)
    probs = annotations.prob_labels(labels)
    assert probs[0, 2] == pytest.approx(0.2) and probs[0, 28] == pytest.approx(0.8)
    assert probs[1, 28] == 1.0
    np.testing.assert_array_equal(annotations.video_labels(np.array([5]))[0], np.eye(29)[5])


@needs_shared
def test_derived_labels_equal_the_real_release_files():
    videos = annotations.parse_annotations((SHARED / "Annotations.txt").read_text())
    assert len(videos) == 4143
    categories, starts, ends = annotations.as_arrays(videos)
    with h5py.File(SHARED / "mil_labels.h5") as handle:
        mil = handle["avadataset"][()]
    with h5py.File(SHARED / "labels_closs.h5") as handle:
        closs = handle["avadataset"][()]
    with h5py.File(SHARED / "labels_noisy.h5") as handle:
        noisy = handle["avadataset"][()]
    np.testing.assert_array_equal(annotations.video_labels(categories), mil)
    np.testing.assert_array_equal(annotations.event_mask(starts, ends).astype(np.float32), closs)
    labels = annotations.segment_labels(categories, starts, ends)
    np.testing.assert_array_equal(labels != ave.BACKGROUND, closs.astype(bool))
    np.testing.assert_array_equal(
        annotations.video_labels(np.full(len(noisy), ave.BACKGROUND)), noisy
    )
    # Category ids follow first appearance in Annotations.txt (reference.md §1).
    first_seen = list(dict.fromkeys(categories.tolist()))
    assert first_seen == list(range(28))


@needs_shared
def test_real_split_files_have_the_published_sizes_and_do_not_overlap():
    splits = release.read_splits(SHARED, 4143)
    assert {name: len(indices) for name, indices in splits.items()} == {
        "train": 3339,
        "validation": 402,
        "test": 402,
    }
    assert len(np.unique(np.concatenate(list(splits.values())))) == 4143


def _official_right_and_prob_labels(text):
    """right_labels (videos, 10, 29) and prob_label (videos, 29) by the official rule
    (reference.md §1), from the raw lines: a segment t of a video is its category when
    Start <= t < End, else background (28); prob_label is the mean of the 10 one-hots.
    Category ids by first appearance. Independent of tfds_ave.annotations."""
    rows = [line.split("&") for line in text.splitlines() if line.strip()]
    if rows[0][0].lower() == "category":
        rows = rows[1:]
    ids = {}
    for name, *_ in rows:
        ids.setdefault(name, len(ids))
    right = np.zeros((len(rows), 10, 29), np.float32)
    for video, (name, _, _, start, end) in enumerate(rows):
        for t in range(10):
            right[video, t, ids[name] if int(start) <= t < int(end) else 28] = 1.0
    return right, right.sum(axis=1) / 10.0


@needs_shared
def test_right_labels_and_prob_label_follow_the_official_rule_on_the_real_annotation():
    text = (SHARED / "Annotations.txt").read_text()
    right, prob = _official_right_and_prob_labels(text)
    # The rule itself agrees with the official files that are published.
    with h5py.File(SHARED / "labels_closs.h5") as handle:
        np.testing.assert_array_equal(right[:, :, :28].sum(axis=2), handle["avadataset"][()])
    with h5py.File(SHARED / "mil_labels.h5") as handle:
        mil = handle["avadataset"][()]
    assert (right[:, :, :28].max(axis=1).argmax(axis=1) == mil.argmax(axis=1))[
        right[:, :, :28].any(axis=(1, 2))
    ].all()
    # What the builder writes (label_fields, as stream_examples calls it).
    videos = annotations.parse_annotations(text)
    examples = list(annotations.label_fields(*annotations.as_arrays(videos)))
    segment_labels = np.stack([example["segment_labels"] for example in examples])
    np.testing.assert_array_equal(np.eye(29, dtype=np.float32)[segment_labels], right)
    written = np.stack([example["prob_label"] for example in examples])
    np.testing.assert_allclose(written, prob, rtol=0, atol=1e-7)
