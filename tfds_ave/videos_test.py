"""The ``videos`` and ``clips`` configs: Beam builds from generated clips with tiny models.

The extractor is `ave_tf.testing.tiny_extractors.tiny_feature_extractor`, named in the
builder config's ``extractor_factory`` (an importable name: multi-process Beam workers build it
themselves). Features are compared with what ``ave_tf.extract`` writes for the same files with
the same extractor; labels and keys with the ``features`` config built from the same
``Annotations.txt`` and split files.
"""

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds

from ave_tf import extract
from ave_tf.testing import clips
from ave_tf.testing.tiny_extractors import tiny_feature_extractor
from tfds_ave import clips_csv, release, video_fixtures, videos
from tfds_ave import tfds_ave_dataset_builder as builder_module

TINY = "ave_tf.testing.tiny_extractors:tiny_feature_extractor"
BATCH = 16
# Rows 4 and 9 repeat the YouTube ids of rows 1 and 2 (AVE annotates 45 ids twice).
REPEATED = {4: 1, 6: 2}
ROWS = 8
LABEL_FIELDS = ("video_id", "segment_labels", "category", "event_start", "event_end")
LABEL_TENSORS = ("video_label", "prob_label")


def video_config(name: str, source: str = "videos", **fields) -> builder_module.BuilderConfig:
    fields = {"extractor_factory": TINY, "batch_size": BATCH, **fields}
    return builder_module.BuilderConfig(name=name, source=source, **fields)


def build(config, manual_dir, data_dir, beam_args=()):
    """Builds on Beam's FnApiRunner (the DirectRunner's local engine, without its attempt to
    download the Prism runner) with ``beam_args`` (none: one process; never the test runner's
    command line, which Beam would otherwise parse)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(["--runner=FnApiRunner", *beam_args])
    builder = tfds.builder("tfds_ave", config=config, data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=str(manual_dir), beam_options=options
        )
    )
    return builder


def examples(builder) -> dict[str, dict]:
    """split -> its examples as NumPy dicts, in stored order."""
    out = {}
    for split in builder.info.splits:
        items = tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))
        out[split] = list(items)
    return out


def by_video_and_labels(split_examples) -> list[tuple]:
    """Examples as sortable ``(video_id, category, start, end, example)``."""
    return sorted(
        (
            (e["video_id"].decode(), int(e["category"]), int(e["event_start"]), e)
            for e in split_examples
        ),
        key=lambda item: item[:3],
    )


def extracted_with_ave_tf_extract(manual_dir, output) -> dict[str, tuple]:
    """video_id -> (audio, visual) as ``python -m ave_tf.extract --videos_dir=AVE
    --annotations=Annotations.txt`` writes them (same tiny extractor)."""
    listed = extract.list_videos(
        [], str(manual_dir / videos.VIDEOS_DIR), str(manual_dir / release.ANNOTATIONS)
    )
    extract.extract_to_file(listed, output, lambda: tiny_feature_extractor(BATCH))
    with h5py.File(output, "r") as handle:
        ids = [value.decode() for value in handle["video_id"][()]]
        return {
            video_id: (handle["audio"][row], handle["visual"][row])
            for row, video_id in enumerate(ids)
        }


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ave_videos")
    video_fixtures.write_videos_dir(folder, ROWS, REPEATED, seed=3, keep_features=True)
    return folder


@pytest.fixture(scope="module")
def videos_build(manual_dir, tmp_path_factory):
    return build(video_config("videos_tiny"), manual_dir, tmp_path_factory.mktemp("data"))


def test_videos_config_gives_extract_features_and_the_features_config_labels(
    manual_dir, videos_build, tmp_path
):
    built = examples(videos_build)
    reference = examples(build("features", manual_dir, tmp_path / "features_data"))
    expected = extracted_with_ave_tf_extract(manual_dir, tmp_path / "extracted.h5")
    assert set(built) == {"train", "validation", "test"}
    assert {s: len(e) for s, e in built.items()} == {s: len(e) for s, e in reference.items()}
    assert sum(len(e) for e in built.values()) == ROWS
    for split in built:
        ours, theirs = by_video_and_labels(built[split]), by_video_and_labels(reference[split])
        for (*key, example), (*other_key, other) in zip(ours, theirs, strict=True):
            assert key == other_key
            for field in LABEL_FIELDS:
                np.testing.assert_array_equal(example[field], other[field])
            for field in LABEL_TENSORS:
                np.testing.assert_array_equal(example[field], other[field])
            audio, visual = expected[example["video_id"].decode()]
            np.testing.assert_allclose(example["audio"], audio, rtol=0, atol=1e-6)
            np.testing.assert_allclose(example["visual"], visual, rtol=0, atol=1e-6)
    # The clips differ, so a video given another's features would be caught above.
    distinct = list(expected.values())
    assert len(distinct) == ROWS - len(REPEATED)
    for first in range(len(distinct)):
        for second in range(first):
            assert np.abs(distinct[first][1] - distinct[second][1]).max() > 1e-3


def test_videos_build_has_the_features_config_feature_spec(videos_build):
    features = tfds.builder("tfds_ave", config="features").info.features
    assert repr(videos_build.info.features) == repr(features)
    assert videos_build.info.metadata["skipped_videos"] == []
    assert videos_build.info.metadata["extractor"] == TINY
    # Built by the extractor with VGGish's fc2 ReLU: not where a 1.0.0 build would be.
    assert videos_build.info.metadata["recipe_version"] == 2
    assert str(videos_build.version) == "1.1.0" and videos_build.data_path.name == "1.1.0"


def test_a_repeated_id_is_one_video_per_split_with_one_example_per_annotation(manual_dir):
    plan = videos.plan_videos(manual_dir)
    lines = (manual_dir / release.ANNOTATIONS).read_text().splitlines()
    for row, earlier in REPEATED.items():
        video_id = lines[earlier].split("&")[1]
        keys = []
        for jobs in plan.splits.values():
            assert len({job.path for job in jobs}) == len(jobs)  # each file once per split
            keys += [key for job in jobs if job.video_id == video_id for key, _ in job.examples]
        assert sorted(keys) == [f"{earlier:04d}_{video_id}", f"{row:04d}_{video_id}"]


@pytest.mark.slow
def test_missing_and_undecodable_videos_both_ways(tmp_path):
    folder = tmp_path / "manual"
    ids = video_fixtures.write_videos_dir(folder, 5, seed=4)
    folder_of = folder / videos.VIDEOS_DIR
    missing, truncated, text = ids[0], ids[1], ids[3]
    (folder_of / f"{missing}.mp4").unlink()
    clips.truncate(folder_of / f"{truncated}.mp4", 0.3)
    (folder_of / f"{text}.mp4").write_text("not a video\n")
    config_dir = tmp_path / "data" / "tfds_ave" / "videos_bad"

    # Missing files: one error listing every one, before any work.
    with pytest.raises(videos.VideosError) as error:
        build(video_config("videos_bad"), folder, tmp_path / "data")
    assert f"no video file for 1 of the 5 annotated rows: {missing}." in str(error.value)
    assert "skip_missing=True" in str(error.value)
    assert not config_dir.exists() or not any(config_dir.iterdir())

    # Undecodable files: the build runs to the end, then fails listing each with its reason.
    with pytest.raises(builder_module.VideoBuildError) as error:
        build(video_config("videos_bad", skip_missing=True), folder, tmp_path / "data")
    message = str(error.value)
    assert "2 videos could not be decoded; no dataset was written" in message
    assert f"{text} ({folder_of / text}.mp4): not a readable video file" in message
    assert f"{truncated} ({folder_of / truncated}.mp4): " in message
    assert "truncated or corrupt" in message or "decoding stopped" in message
    assert not config_dir.exists() or not any(config_dir.iterdir())

    # skip_missing=True: built without them, their ids in the metadata (kept on reload).
    for video_id in (truncated, text):
        (folder_of / f"{video_id}.mp4").unlink()
    built = build(video_config("videos_bad", skip_missing=True), folder, tmp_path / "data")
    skipped = [[video_id, "no video file"] for video_id in sorted([missing, truncated, text])]
    assert built.info.metadata["skipped_videos"] == skipped
    got = [e["video_id"].decode() for split in examples(built).values() for e in split]
    assert sorted(got) == sorted([ids[2], ids[4]])
    reloaded = tfds.builder(
        "tfds_ave",
        config=video_config("videos_bad", skip_missing=True),
        data_dir=str(tmp_path / "data"),
    )
    assert reloaded.info.metadata["skipped_videos"] == skipped


def test_two_files_for_one_video_are_refused(tmp_path):
    folder = tmp_path / "AVE"
    folder.mkdir()
    (folder / "abc.mp4").write_bytes(b"")
    (folder / "abc.webm").write_bytes(b"")
    with pytest.raises(videos.VideosError, match="two files for video 'abc': abc.mp4 and abc.webm"):
        videos.video_files(folder)


def test_missing_model_files_are_named_before_any_work(manual_dir, tmp_path):
    config = builder_module.BuilderConfig(name="videos_no_models", source="videos")
    with pytest.raises(
        videos.VideosError,
        match="model file not found: .*vggish_model.ckpt, "
        ".*vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ):
        build(config, manual_dir, tmp_path / "data")
    with pytest.raises(ValueError, match="extractor_factory 'nowhere:x': cannot import it"):
        build(
            video_config("videos_bad_factory", extractor_factory="nowhere:x"),
            manual_dir,
            tmp_path / "data",
        )


def _write_csv(folder, rows) -> None:
    lines = ["video_path,split,category,start,end", *[",".join(map(str, r)) for r in rows]]
    (folder / clips_csv.CLIPS_CSV).write_text("\n".join(lines) + "\n")


def test_clips_config_takes_its_classes_and_labels_from_the_csv(tmp_path):
    folder = tmp_path / "manual"
    (folder / "media").mkdir(parents=True)
    for index, name in enumerate(["a", "b", "c"]):
        clips.write_clip(folder / "media" / f"{name}.mp4", video_fixtures.clip_spec(index))
    _write_csv(
        folder,
        [
            ("media/a.mp4", "train", "Siren", 2, 7),
            ("media/b.mp4", "train", "Dog bark", 0, 10),
            ("media/a.mp4", "train", "Dog bark", 7, 9),  # a second event of a.mp4
            (folder / "media" / "c.mp4", "test", "background", 0, 0),
        ],
    )
    built = build(video_config("clips_tiny", source="clips"), folder, tmp_path / "data")
    names = ["Dog bark", "Siren", "background"]
    assert built.info.features["category"].names == names
    assert built.info.features["segment_labels"].feature.names == names
    got = examples(built)
    assert {split: len(items) for split, items in got.items()} == {"train": 3, "test": 1}
    extractor = tiny_feature_extractor(BATCH)
    expected = {n: extractor.extract(folder / "media" / f"{n}.mp4") for n in ["a", "b", "c"]}
    rows = {(e["video_id"].decode(), int(e["event_start"])): e for s in got.values() for e in s}
    background = 2
    for (video_id, start), end, category in [
        (("a", 2), 7, 1),
        (("b", 0), 10, 0),
        (("a", 7), 9, 0),
        (("c", 0), 0, background),
    ]:
        example = rows[(video_id, start)]
        segments = np.full(10, background)
        segments[start:end] = category
        np.testing.assert_array_equal(example["segment_labels"], segments)
        assert int(example["category"]) == category and int(example["event_end"]) == end
        np.testing.assert_array_equal(example["video_label"], np.eye(3)[category])
        np.testing.assert_allclose(example["prob_label"], np.eye(3)[segments].mean(axis=0))
        audio, visual = expected[video_id]
        np.testing.assert_allclose(example["audio"], audio, rtol=0, atol=1e-6)
        np.testing.assert_allclose(example["visual"], visual, rtol=0, atol=1e-6)
    reloaded = tfds.builder(
        "tfds_ave",
        config=video_config("clips_tiny", source="clips"),
        data_dir=str(tmp_path / "data"),
    )
    assert reloaded.info.features["category"].names == names


@pytest.mark.parametrize(
    "row, message",
    [
        (("x.mp4", "train", "Dog", 3, 2), "line 2: start=3 must be <= end=2"),
        (("x.mp4", "train", "Dog", 0, 11), "line 2: end must lie in \\[0, 10\\], got 11"),
        (("x.mp4", "train", "Dog", "a", 2), "line 2: start must be an integer 0..10 .*got 'a'"),
        (
            ("x.mp4", "train", "Dog", 0, "\u0661"),
            "line 2: end must be .*ASCII digits, got '\u0661'",
        ),
        (
            ("x.mp4", "train", "Dog", "\uff11", 2),
            "line 2: start must be .*ASCII digits, got '\uff11'",
        ),
        (("x.mp4", "all", "Dog", 0, 2), "line 2: split 'all' must be letters"),
        (("x.mp4", "train", "background", 0, 2), "line 2: a 'background' clip has no event"),
        (("x.mp4", "train", "", 0, 2), "line 2: category is empty"),
        (("x.mp4", "train", "Dog", 0), "line 2: expected 5 fields, got 4"),
    ],
)
def test_bad_csv_rows_are_named(tmp_path, row, message):
    _write_csv(tmp_path, [row])
    with pytest.raises(clips_csv.ClipsCsvError, match=message):
        clips_csv.plan_clips(tmp_path)


def test_csv_header_and_missing_clips(tmp_path):
    (tmp_path / clips_csv.CLIPS_CSV).write_text("path,split\n")
    with pytest.raises(clips_csv.ClipsCsvError, match="line 1: header must be video_path,split"):
        clips_csv.plan_clips(tmp_path)
    _write_csv(tmp_path, [("x.mp4", "train", "Dog", 0, 2), ("y.mp4", "test", "Dog", 0, 2)])
    with pytest.raises(
        videos.VideosError, match="no video file for 2 of the 2 listed videos: x.mp4, y.mp4"
    ):
        clips_csv.plan_clips(tmp_path)
    clips.write_clip(tmp_path / "y.mp4", video_fixtures.clip_spec(0))
    names, plan = clips_csv.plan_clips(tmp_path, skip_missing=True)
    assert names == ["Dog", "background"] and plan.skipped == [("x.mp4", "no video file")]
    assert list(plan.splits) == ["test"]


def test_csv_with_a_byte_order_mark_is_read(tmp_path):
    """Spreadsheet exports ("CSV UTF-8") start with a UTF-8 byte order mark."""
    _write_csv(tmp_path, [("y.mp4", "test", "Dog", 0, 2)])
    path = tmp_path / clips_csv.CLIPS_CSV
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    clips.write_clip(tmp_path / "y.mp4", video_fixtures.clip_spec(0))
    names, plan = clips_csv.plan_clips(tmp_path)
    assert names == ["Dog", "background"] and list(plan.splits) == ["test"]


def test_a_directory_as_video_path_is_refused_at_planning(tmp_path):
    (tmp_path / "clips_folder").mkdir()
    clips.write_clip(tmp_path / "y.mp4", video_fixtures.clip_spec(0))
    _write_csv(tmp_path, [("y.mp4", "test", "Dog", 0, 2), ("clips_folder", "train", "Dog", 1, 3)])
    for skip_missing in (False, True):
        with pytest.raises(
            clips_csv.ClipsCsvError,
            match=r"clips.csv line 3: video_path 'clips_folder' is a directory, not a video file$",
        ):
            clips_csv.plan_clips(tmp_path, skip_missing=skip_missing)


@pytest.mark.slow
def test_multi_process_beam_build_equals_the_single_process_one(manual_dir, videos_build, tmp_path):
    parallel = build(
        video_config("videos_tiny"),
        manual_dir,
        tmp_path / "data",
        ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    )
    single, multi = examples(videos_build), examples(parallel)
    for split in single:
        ours, theirs = by_video_and_labels(multi[split]), by_video_and_labels(single[split])
        for (*key, example), (*other_key, other) in zip(ours, theirs, strict=True):
            assert key == other_key
            for field in ("audio", "visual", *LABEL_FIELDS, *LABEL_TENSORS):
                np.testing.assert_array_equal(example[field], other[field])
