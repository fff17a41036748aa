"""Sources: features files, a TFDS split (the features config on tfds_ave's dummy data)."""

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds

from ave_tf.visualize import commands, sources, timeline
from ave_tf.visualize.conftest import expected_pixels, make_options, png_size


def test_npz_and_h5_features_files(tmp_path, videos_arrays):
    npz = tmp_path / "v.npz"
    np.savez(npz, audio=videos_arrays["audio"], visual=videos_arrays["visual"])
    h5 = tmp_path / "v.h5"
    with h5py.File(h5, "w") as file:
        for key in ("audio", "visual", "segment_labels"):
            file[key] = videos_arrays[key]
    from_npz, from_h5 = sources.load_features_file(npz), sources.load_features_file(h5)
    np.testing.assert_array_equal(from_npz.audio, from_h5.audio)
    assert from_npz.segment_labels is None and from_npz.video_ids[2] == "video_2"
    np.testing.assert_array_equal(from_h5.segment_labels, videos_arrays["segment_labels"])
    picked = from_h5.select([4, 1])
    np.testing.assert_array_equal(picked.visual, videos_arrays["visual"][[4, 1]])
    with pytest.raises(sources.SourceError, match="video index 6 out of range: there are 6"):
        from_h5.select([6])


def test_bad_features_files_are_named(tmp_path, videos_arrays):
    with pytest.raises(sources.SourceError, match="does not exist"):
        sources.load_features_file(tmp_path / "absent.npz")
    np.savez(tmp_path / "no_visual.npz", audio=videos_arrays["audio"])
    with pytest.raises(sources.SourceError, match="no_visual.npz has no 'visual'"):
        sources.load_features_file(tmp_path / "no_visual.npz")
    np.savez(tmp_path / "short.npz", audio=videos_arrays["audio"][:, :9], visual=np.zeros(1))
    with pytest.raises(sources.SourceError, match=r"audio must have shape \(6, 10, 128\)"):
        sources.load_features_file(tmp_path / "short.npz")
    with pytest.raises(sources.SourceError, match="is not a .keras file"):
        sources.load_keras_model(tmp_path / "short.npz")


@pytest.fixture(scope="module")
def dummy_split(tmp_path_factory):
    """The features config built from tfds_ave/dummy_data (a few videos)."""
    from ave_tf import data
    from tfds_ave import make_dummy_data

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    builder = data.prepare_builder(
        "features", data_dir=data_dir, manual_dir=str(make_dummy_data.DUMMY_DATA)
    )
    return data_dir, builder


def test_split_is_read_in_order_with_labels(dummy_split):
    data_dir, builder = dummy_split
    videos = sources.load_split("features", "test", data_dir=data_dir)
    direct = list(tfds.as_numpy(builder.as_dataset(split="test", shuffle_files=False)))
    assert videos.video_ids == tuple(row["video_id"].decode() for row in direct)
    np.testing.assert_array_equal(videos.segment_labels, [row["segment_labels"] for row in direct])
    np.testing.assert_array_equal(videos.audio, [row["audio"] for row in direct])
    with pytest.raises(sources.SourceError, match="no split 'nope'"):
        sources.load_split("features", "nope", data_dir=data_dir)


def test_timeline_from_a_tfds_split(tmp_path, dummy_split, model_file):
    data_dir, _ = dummy_split
    options = make_options(
        "timeline",
        tmp_path,
        model=str(model_file),
        dataset="features",
        split="test[:1]",
        data_dir=data_dir,
    )
    (path,) = commands.run(options)
    assert path.name.startswith("timeline_") and png_size(path) == expected_pixels(
        timeline.SIZE_INCHES
    )


def test_unbuildable_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(sources.SourceError, match="features is not built.*no manual_dir"):
        sources.load_split("features", "test", data_dir=str(tmp_path))
