"""Bad input: every broken release fails with a message naming the file and the video, and
leaves no dataset (complete or partial) in the data directory."""

import shutil

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath

from tfds_ave import annotations, release, tfds_ave_dataset_builder

DUMMY = epath.Path(__file__).parent / "dummy_data"


@pytest.fixture
def manual_dir(tmp_path):
    target = tmp_path / "release"
    shutil.copytree(DUMMY, target)
    return target


def _rewrite(path, key, values):
    path.unlink()
    with h5py.File(path, "w") as handle:
        handle.create_dataset(key, data=values)


def _read(path, key=release.FEATURE_KEY):
    with h5py.File(path) as handle:
        return handle[key][()]


def _build_fails(tmp_path, manual_dir, *fragments):
    """Builds `features` from manual_dir; asserts the error text and that nothing is left."""
    data_dir = tmp_path / "tensorflow_datasets"
    builder = tfds.builder("tfds_ave", config="features", data_dir=str(data_dir))
    with pytest.raises((release.ReleaseError, annotations.AnnotationError)) as error:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
        )
    for fragment in fragments:
        assert fragment in str(error.value)
    config_dir = data_dir / "tfds_ave" / "features"
    left = sorted(p.name for p in config_dir.iterdir()) if config_dir.exists() else []
    assert left == [], f"partial dataset left behind: {left}"
    assert not builder.is_prepared()
    return str(error.value)


def test_the_unmodified_dummy_release_reads(manual_dir):
    data = release.read_release(manual_dir)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 8, "validation": 1, "test": 1}
    assert data.background_videos == 2


def test_missing_file_lists_the_expected_layout(tmp_path, manual_dir):
    (manual_dir / "visual_feature.h5").unlink()
    message = _build_fails(tmp_path, manual_dir, "missing visual_feature.h5", "Expected layout")
    assert "train_order.h5" in message and "Annotations.txt" in message


def test_partial_background_set(tmp_path, manual_dir):
    (manual_dir / "labels_noisy.h5").unlink()
    _build_fails(tmp_path, manual_dir, "needs all of", "missing labels_noisy.h5")


def test_wrong_shape(tmp_path, manual_dir):
    path = manual_dir / "audio_feature.h5"
    _rewrite(path, release.FEATURE_KEY, _read(path)[:, :, :64])
    _build_fails(tmp_path, manual_dir, "audio_feature.h5", "shape (10, 10, 64)", "(10, 10, 128)")


def test_wrong_dtype(tmp_path, manual_dir):
    path = manual_dir / "visual_feature.h5"
    _rewrite(path, release.FEATURE_KEY, _read(path).astype(np.int32))
    _build_fails(tmp_path, manual_dir, "visual_feature.h5", "dtype int32", "expected float")


def test_row_count_differs_from_annotations(tmp_path, manual_dir):
    path = manual_dir / "visual_feature.h5"
    _rewrite(path, release.FEATURE_KEY, _read(path)[:9])
    _build_fails(tmp_path, manual_dir, "visual_feature.h5", "has 9 rows", "has 10 videos")


@pytest.mark.parametrize(
    "replace, fragment",
    [
        (lambda f: ["Barking", *f[1:]], "unknown category 'Barking'"),
        (lambda f: [*f[:3], "6", "4"], "start=6 must be < end=4"),
        (lambda f: [*f[:3], "2", "12"], "must lie in [0, 10]"),
    ],
)
def test_malformed_annotation_line(tmp_path, manual_dir, replace, fragment):
    path = manual_dir / "Annotations.txt"
    lines = path.read_text().splitlines()
    lines[2] = "&".join(replace(lines[2].split("&")))
    path.write_text("\n".join(lines) + "\n")
    _build_fails(tmp_path, manual_dir, "Annotations.txt line 3", fragment)


def test_split_index_out_of_range(tmp_path, manual_dir):
    path = manual_dir / "val_order.h5"
    _rewrite(path, release.ORDER_KEY, np.array([10]))
    _build_fails(tmp_path, manual_dir, "val_order.h5", "video index 10 is out of range [0, 10)")


def test_overlapping_splits(tmp_path, manual_dir):
    taken = int(_read(manual_dir / "train_order.h5", release.ORDER_KEY)[0])
    _rewrite(manual_dir / "test_order.h5", release.ORDER_KEY, np.array([taken]))
    _build_fails(tmp_path, manual_dir, "test_order.h5", f"video index {taken} is also in")


def test_cross_checked_label_file_disagrees(tmp_path, manual_dir):
    path = manual_dir / "mil_labels.h5"
    values = _read(path)
    values[4] = np.roll(values[4], 1)
    _rewrite(path, release.FEATURE_KEY, values)
    video_id = (manual_dir / "Annotations.txt").read_text().splitlines()[4].split("&")[1]
    _build_fails(tmp_path, manual_dir, "mil_labels.h5", "row 4", video_id, "line 5")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_a_feature_row(tmp_path, manual_dir, bad, monkeypatch):
    monkeypatch.setattr(release, "_CHUNK", 2)  # earlier rows are generated before the bad one
    path = manual_dir / "visual_feature.h5"
    values = _read(path)
    train = _read(manual_dir / "train_order.h5", release.ORDER_KEY)
    row = int(sorted(train)[-1])  # read late: the build has started writing by then
    values[row, 3, 1, 2, 5] = bad
    _rewrite(path, release.FEATURE_KEY, values)
    video_id = (manual_dir / "Annotations.txt").read_text().splitlines()[row].split("&")[1]
    _build_fails(tmp_path, manual_dir, "visual_feature.h5", f"video {row}", video_id, "NaN or Inf")


def test_builder_registered_from_this_package():
    assert tfds.builder_cls("tfds_ave") is tfds_ave_dataset_builder.Builder


def test_annotations_that_are_not_utf8(tmp_path, manual_dir):
    path = manual_dir / "Annotations.txt"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"&", b"\xe9&", 1)  # Latin-1 'é'
    path.write_bytes(b"\n".join(lines))
    _build_fails(tmp_path, manual_dir, "Annotations.txt: line 4 is not UTF-8", "b'\\xe9'")


@pytest.mark.parametrize(
    "name, offset",
    [
        ("audio_feature.h5", 0),  # the signature: h5py raises OSError
        ("train_order.h5", 672),  # the root group's local heap: RuntimeError
        ("mil_labels.h5", 768),  # the dataset's object header: KeyError
        ("visual_feature.h5", 1344),  # the chunk index: OSError while streaming rows
    ],
)
def test_damaged_hdf5_file_is_named(tmp_path, manual_dir, name, offset):
    path = manual_dir / name
    content = bytearray(path.read_bytes())
    content[offset : offset + 64] = b"\x5a" * 64
    path.write_bytes(bytes(content))
    _build_fails(tmp_path, manual_dir, f"{name}: damaged or not a readable HDF5 file")
