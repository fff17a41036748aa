"""The reader of videos: features files (.npz, .h5) and a TFDS split (the features config on
tfds_ave's dummy data)."""

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds

from ave_tf import videos as reader
from ave_tf.errors import UsageError
from ave_tf.visualize.conftest import random_videos


@pytest.fixture(scope="module")
def videos_arrays():
    return random_videos(6)


def test_npz_and_h5_features_files(tmp_path, videos_arrays):
    npz = tmp_path / "v.npz"
    np.savez(npz, audio=videos_arrays["audio"], visual=videos_arrays["visual"])
    h5 = tmp_path / "v.h5"
    with h5py.File(h5, "w") as file:
        for key in ("audio", "visual", "segment_labels", "video_ids"):
            file[key] = videos_arrays[key].astype("S") if key == "video_ids" else videos_arrays[key]
    from_npz, from_h5 = reader.read_features_file(npz), reader.read_features_file(h5)
    np.testing.assert_array_equal(from_npz.audio, from_h5.audio)
    assert from_npz.segment_labels is None and from_npz.video_ids[2] == "v[2]"
    assert from_h5.video_ids == tuple(videos_arrays["video_ids"])
    np.testing.assert_array_equal(from_h5.segment_labels, videos_arrays["segment_labels"])
    picked = from_h5.select([4, 1])
    np.testing.assert_array_equal(picked.visual, videos_arrays["visual"][[4, 1]])
    with pytest.raises(reader.VideoSourceError, match="video index 6 out of range: there are 6"):
        from_h5.select([6])


def test_one_video_without_batch_axis_and_singular_video_id(tmp_path, videos_arrays):
    path = tmp_path / "one.npz"
    np.savez(
        path,
        audio=videos_arrays["audio"][3],
        visual=videos_arrays["visual"][3],
        segment_labels=videos_arrays["segment_labels"][3],
        video_id="clip/3",
    )
    one = reader.read_features_file(path)
    assert one.video_ids == ("clip/3",) and one.audio.shape == (1, 10, 128)
    np.testing.assert_array_equal(one.segment_labels[0], videos_arrays["segment_labels"][3])


def test_bad_features_files_are_named(tmp_path, videos_arrays):
    with pytest.raises(reader.VideoSourceError, match="does not exist"):
        reader.read_features_file(tmp_path / "absent.npz")
    np.savez(tmp_path / "no_visual.npz", audio=videos_arrays["audio"])
    with pytest.raises(reader.VideoSourceError, match="no_visual.npz: missing field 'visual'"):
        reader.read_features_file(tmp_path / "no_visual.npz")
    np.savez(tmp_path / "short.npz", audio=videos_arrays["audio"][:, :9], visual=np.zeros(1))
    with pytest.raises(reader.VideoSourceError, match=r"audio must have shape \(6, 10, 128\)"):
        reader.read_features_file(tmp_path / "short.npz")
    (tmp_path / "broken.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(UsageError, match=r"broken.h5: cannot read it as .h5"):
        reader.read_features_file(tmp_path / "broken.h5")
    np.savez(
        tmp_path / "labels.npz",
        **{**videos_arrays, "segment_labels": videos_arrays["segment_labels"] + 29},
    )
    with pytest.raises(UsageError, match=r"labels.npz: segment_labels must be in \[0, 29\)"):
        reader.read_features_file(tmp_path / "labels.npz")


@pytest.mark.parametrize("spec", ["synthetic:test", "tfds_ave/synthetic", "other/x:test"])
def test_split_specs_are_checked(spec):
    assert reader.parse_split_spec("tfds_ave/features:test[:8]") == ("features", "test[:8]")
    with pytest.raises(UsageError, match="a split must look like tfds_ave/synthetic:test"):
        reader.parse_split_spec(spec)


def build_dummy_split(tmp_path_factory):
    """(data_dir, builder) of the features config built from tfds_ave/dummy_data."""
    from ave_tf import data
    from tfds_ave import make_dummy_data

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    builder = data.prepare_builder(
        "features", data_dir=data_dir, manual_dir=str(make_dummy_data.DUMMY_DATA)
    )
    return data_dir, builder


@pytest.fixture(scope="module")
def dummy_split(tmp_path_factory):
    return build_dummy_split(tmp_path_factory)


def test_split_is_read_in_order_with_labels(dummy_split):
    data_dir, builder = dummy_split
    videos = reader.read_split("features", "test", data_dir=data_dir)
    direct = list(tfds.as_numpy(builder.as_dataset(split="test", shuffle_files=False)))
    assert videos.video_ids == tuple(row["video_id"].decode() for row in direct)
    np.testing.assert_array_equal(videos.segment_labels, [row["segment_labels"] for row in direct])
    np.testing.assert_array_equal(videos.audio, [row["audio"] for row in direct])
    batches = list(reader.split_batches("features", "test", 2, data_dir=data_dir))
    assert [len(batch) for batch in batches][:-1] == [2] * (len(batches) - 1)
    np.testing.assert_array_equal(
        reader.Videos.concatenate(batches).visual, [row["visual"] for row in direct]
    )
    with pytest.raises(reader.VideoSourceError, match="no split 'nope'"):
        reader.read_split("features", "nope", data_dir=data_dir)
    with pytest.raises(reader.VideoSourceError, match=r"test\[:0\].*corresponds to no data"):
        reader.read_split("features", "test[:0]", data_dir=data_dir)


def test_unbuildable_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(reader.VideoSourceError, match="features is not built.*no manual_dir"):
        reader.read_split("features", "test", data_dir=str(tmp_path))


def test_signed_audio_without_the_current_recipe_warns_in_one_line(tmp_path, capsys):
    arrays = random_videos(2)
    signed = {**arrays, "audio": arrays["audio"] - 1.0}  # as a linear fc2 gives
    np.savez(tmp_path / "signed.npz", **signed)
    np.savez(tmp_path / "relu.npz", **arrays)
    for name, recipe in [("recipe_1.h5", 1), ("recipe_2.h5", 2)]:
        with h5py.File(tmp_path / name, "w") as file:
            file["audio"], file["visual"] = signed["audio"], signed["visual"]
            file.attrs["recipe_version"] = recipe
    warned = {}
    for name in ("signed.npz", "relu.npz", "recipe_1.h5", "recipe_2.h5"):
        videos = reader.read_features_file(tmp_path / name)
        warned[name] = capsys.readouterr().err.splitlines()
        if name != "relu.npz":  # read as they are: a warning, not a change
            np.testing.assert_array_equal(videos.audio, signed["audio"])
    lowest = signed["audio"].min()
    assert warned["signed.npz"] == [
        f"warning: {tmp_path / 'signed.npz'}: negative audio features (min {lowest:.3g}), unlike "
        "VGGish's after its fc2 ReLU (the AVE release; ave_tf.extract recipe 2); if an older "
        "ave_tf.extract wrote it, np.maximum(audio, 0) makes it recipe 2 exactly"
    ]
    assert len(warned["recipe_1.h5"]) == 1 and "recipe_1.h5: negative" in warned["recipe_1.h5"][0]
    assert warned["relu.npz"] == [] and warned["recipe_2.h5"] == []
