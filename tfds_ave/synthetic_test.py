"""The synthetic AVE: deterministic, prefix-stable, and with AVE's statistics."""

import itertools
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from ave_tf import ave
from tfds_ave import synthetic


def _take(split, size, count=None, seed=0):
    return list(itertools.islice(synthetic.generate(split, size, seed), count))


@pytest.fixture(scope="module")
def videos():
    return _take("train", 384)


def test_tables_describe_all_of_ave():
    assert len(synthetic.CATEGORY_COUNTS) == 28
    assert sum(synthetic.CATEGORY_COUNTS) == 4143
    assert sum(count for _, _, count in synthetic.SPAN_COUNTS) == 4143
    assert synthetic.FULL == synthetic.SplitSizes(3339, 402, 402, 178)


def test_deterministic_and_seeded():
    first, again, other = _take("test", 8), _take("test", 8), _take("test", 8, seed=1)
    for (key_a, a), (key_b, b), (_, c) in zip(first, again, other, strict=True):
        assert key_a == key_b
        np.testing.assert_array_equal(a["visual"], b["visual"])
        assert not np.array_equal(a["visual"], c["visual"])


def test_prefix_stable_so_small_sizes_are_the_first_videos_of_large_ones():
    small = _take("validation", 40)
    large = _take("validation", 402, count=40)
    for (key_a, a), (key_b, b) in zip(small, large, strict=True):
        assert key_a == key_b
        np.testing.assert_array_equal(a["audio"], b["audio"])


def test_splits_have_distinct_videos():
    train = {key for key, _ in _take("train", 40)}
    test = {key for key, _ in _take("test", 40)}
    assert not train & test


def test_features_have_plausible_scales(videos):
    audio = np.stack([v["audio"] for _, v in videos])
    visual = np.stack([v["visual"] for _, v in videos[:64]])
    assert audio.shape[1:] == (10, 128) and audio.dtype == np.float32
    assert visual.shape[1:] == (10, 7, 7, 512) and visual.dtype == np.float32
    assert audio.min() == 0.0 and audio.max() <= synthetic.AUDIO_MAX
    assert 0.05 < audio.mean() < 0.3  # real noisy AVE audio: mean 0.12
    assert 0.5 < (audio == 0).mean() < 0.85  # real: 65 % exact zeros
    assert visual.min() == 0.0 and 0.5 < (visual == 0).mean() < 0.95


def test_label_statistics_follow_ave(videos):
    labels = np.stack([v["segment_labels"] for _, v in videos])
    events = labels != ave.BACKGROUND
    assert 0.78 < events.mean() < 0.88  # AVE: 82.9 % event segments
    assert 0.58 < events.all(axis=1).mean() < 0.74  # AVE: 66 % full-length events
    categories = np.array([v["category"] for _, v in videos])
    counts = np.bincount(categories, minlength=28)
    assert np.corrcoef(counts, synthetic.CATEGORY_COUNTS)[0, 1] > 0.5
    for _, video in videos[:50]:
        start, end = video["event_start"], video["event_end"]
        expected = [video["category"] if start <= t < end else 28 for t in range(10)]
        np.testing.assert_array_equal(video["segment_labels"], expected)
        np.testing.assert_allclose(video["prob_label"].sum(), 1.0, rtol=1e-6)
        assert video["video_label"].argmax() == video["category"]


def test_background_segments_show_at_most_one_modality():
    rng = np.random.default_rng(0)
    starts = np.full(2000, 3)
    ends = np.full(2000, 6)
    heard, seen = synthetic.presence(rng, starts, ends)
    background = np.ones(10, bool)
    background[3:6] = False
    assert not (heard[:, background] * seen[:, background]).any()
    assert heard[:, background].mean() > 0.2 and seen[:, background].mean() > 0.2
    assert seen[:, ~background].all()  # the labelled event is always visible
    assert 0.8 < heard[:, ~background].mean() < 1.0  # audio sometimes shifted: misalignment


def test_background_videos_are_all_background():
    for _, video in _take("train_background", 6):
        assert video["category"] == ave.BACKGROUND
        np.testing.assert_array_equal(video["segment_labels"], [ave.BACKGROUND] * 10)
        assert video["prob_label"][ave.BACKGROUND] == 1.0


def test_tfds_ave_builds_examples_without_importing_keras(tmp_path):
    """Registering the builder and encoding synthetic examples as a build does pulls in
    TensorFlow and TFDS only, not the Keras model stack."""
    script = f"""
import sys
import tensorflow_datasets as tfds
import tfds_ave
from tfds_ave import synthetic
builder = tfds.builder("tfds_ave", config="synthetic", data_dir={str(tmp_path)!r})
features = builder.info.features
for _, example in synthetic.generate("train", 2, seed=0):
    features.encode_example(example)
print(sorted(name for name in sys.modules if name.split(".")[0] in ("keras", "tf_keras")))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=pathlib.Path(__file__).resolve().parents[1],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
