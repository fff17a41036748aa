"""Dropout seeds per (seed, epoch, step, call); backups written atomically."""

import hashlib
import json

import h5py
import keras
import numpy as np
import pytest

from trainers.callbacks import Backup, EpochSeeds, _readable_weights, seed_generator_states


def dropout_model():
    """A model with two Dropout layers (two seed generators), as PSP has."""
    inputs = keras.Input((64,))
    hidden = keras.layers.Dropout(0.5, name="first")(inputs)
    outputs = keras.layers.Dropout(0.5, name="second")(keras.layers.Dense(64)(hidden))
    return keras.Model(inputs, outputs)


def epoch_masks(model, seeds, epoch, calls=4):
    """The masks each Dropout layer draws on its first `calls` calls of `epoch`."""
    seeds.on_epoch_begin(epoch)
    ones = np.ones((1, 64), np.float32)
    return {
        layer.name: [
            keras.ops.convert_to_numpy(layer(ones, training=True)) != 0 for _ in range(calls)
        ]
        for layer in model.layers
        if isinstance(layer, keras.layers.Dropout)
    }


def test_consecutive_epochs_draw_different_masks_at_every_call():
    model = dropout_model()
    assert len(seed_generator_states(model)) == 2
    seeds = EpochSeeds(seed=1)
    seeds.set_model(model)
    epochs = [epoch_masks(model, seeds, e) for e in (4, 5)]
    for name in epochs[0]:
        drawn = epochs[0][name] + epochs[1][name]
        for i in range(len(drawn)):
            for j in range(i + 1, len(drawn)):
                assert not np.array_equal(drawn[i], drawn[j]), (name, i, j)
    # The two layers do not share masks either.
    assert not np.array_equal(epochs[0]["first"][0], epochs[0]["second"][0])


def test_masks_are_a_function_of_seed_and_epoch_only():
    model = dropout_model()
    seeds = EpochSeeds(seed=7)
    seeds.set_model(model)
    first = epoch_masks(model, seeds, 3)
    epoch_masks(model, seeds, 9)  # Whatever ran before ...
    again = epoch_masks(model, seeds, 3)  # ... epoch 3 draws the same masks (resume).
    other_seed = EpochSeeds(seed=8)
    other_seed.set_model(model)
    other = epoch_masks(model, other_seed, 3)
    for name in first:
        for a, b, c in zip(first[name], again[name], other[name], strict=True):
            np.testing.assert_array_equal(a, b)
            assert not np.array_equal(a, c)


def compiled_model():
    model = dropout_model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 64)), np.ones((4, 64)), epochs=1, verbose=0)
    return model


def test_backup_is_written_atomically_and_keeps_the_previous(tmp_path):
    model = compiled_model()
    backup = Backup(tmp_path / "backup")
    backup.set_model(model)
    assert backup.initial_epoch == 0 and backup.notice is None
    for epoch in range(2):
        backup.on_epoch_end(epoch)
    metadata = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert metadata == {
        "epoch": 2,
        "weights": "epoch_0002.weights.h5",
        "sha256": sha256(tmp_path / "backup" / "epoch_0002.weights.h5"),
        "previous": {
            "epoch": 1,
            "weights": "epoch_0001.weights.h5",
            "sha256": sha256(tmp_path / "backup" / "epoch_0001.weights.h5"),
        },
    }
    before = {p.name: p.read_bytes() for p in (tmp_path / "backup").iterdir()}

    def killed_mid_write(filepath, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"\x89HDF\r\n\x1a\n" + bytes(88))  # What a kill leaves behind.
        raise KeyboardInterrupt("kill -9 while saving")

    model.save_weights = killed_mid_write
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(2)
    after = {p.name: p.read_bytes() for p in (tmp_path / "backup").iterdir()}
    assert after == before, "a kill while saving must leave the last backup as it was"
    resumed = Backup(tmp_path / "backup")
    assert (resumed.initial_epoch, resumed.notice) == (2, None)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b'{"epoch": 3, "wei', "training_metadata.json is unreadable"),
        (b"[3, 2]", "training_metadata.json is not a backup record"),
    ],
)
def test_unreadable_metadata_starts_over_and_says_so(tmp_path, content, problem):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "training_metadata.json").write_bytes(content)
    backup = Backup(tmp_path / "backup")
    assert backup.initial_epoch == 0
    assert problem in backup.notice
    assert backup.notice.endswith("starting this seed over")
    assert not (tmp_path / "backup").exists()


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip(path, start, size=4096):
    """XORs `size` bytes of the file at `path` from byte `start` on with 0xFF."""
    content = bytearray(path.read_bytes())
    content[start : start + size] = bytes(b ^ 0xFF for b in content[start : start + size])
    path.write_bytes(bytes(content))


def largest_dataset_offset(path):
    """The file offset of the bytes of the largest dataset in the HDF5 file `path`."""
    datasets = []
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda _, item: (
                datasets.append((item.nbytes, item.id.get_offset()))
                if isinstance(item, h5py.Dataset)
                else None
            )
        )
    return max(datasets)[1]


def two_backups(folder):
    """A `Backup` in `folder` after epochs 1 and 2 of a small model."""
    backup = Backup(folder)
    backup.set_model(compiled_model())
    for epoch in range(2):
        backup.model.fit(np.ones((4, 64)), np.zeros((4, 64)), epochs=1, verbose=0)
        backup.on_epoch_end(epoch)
    return backup


def test_backup_with_flipped_bytes_fails_its_sha256_and_falls_back(tmp_path):
    two_backups(tmp_path / "backup")
    newest = tmp_path / "backup" / "epoch_0002.weights.h5"
    flip(newest, largest_dataset_offset(newest))  # Inside a 64 x 64 float32 array.
    assert _readable_weights(newest) is None, "the damage must pass the read check alone"
    resumed = Backup(tmp_path / "backup")
    assert resumed.initial_epoch == 1
    assert resumed.notice.startswith(f"backup {newest} is damaged (SHA-256 ")
    assert resumed.notice.endswith("; resuming from epoch 1")


def test_backup_without_sha256_is_used_unverified_with_a_note(tmp_path):
    two_backups(tmp_path / "backup")
    metadata_path = tmp_path / "backup" / "training_metadata.json"
    metadata = json.loads(metadata_path.read_text())
    del metadata["sha256"], metadata["previous"]["sha256"]  # As the version before wrote it.
    metadata_path.write_text(json.dumps(metadata))
    resumed = Backup(tmp_path / "backup")
    assert resumed.initial_epoch == 2
    newest = tmp_path / "backup" / "epoch_0002.weights.h5"
    assert resumed.notice == (
        f"backup {newest} has no SHA-256 (an older version wrote it): unverified; "
        "resuming from epoch 2"
    )
    resumed.set_model(compiled_model())
    resumed.on_epoch_end(2)  # The next backup has one; its fallback still has none.
    metadata = json.loads(metadata_path.read_text())
    assert metadata["sha256"] == sha256(tmp_path / "backup" / "epoch_0003.weights.h5")
    assert metadata["previous"] == {"epoch": 2, "weights": "epoch_0002.weights.h5"}
