"""End-to-end training on tiny in-memory data: selection, results, resume, replicas."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from ave_tf import data, interrupts
from ave_tf.config import (
    AVELFullySupervisedConfig,
    FullySupervisedConfig,
    WeaklySupervisedConfig,
)
from ave_tf.errors import UsageError
from ave_tf.interrupts_test import press_ctrl_c_in_a_finalizer
from ave_tf.testing.random_videos import random_splits
from trainers import config as run_config
from trainers import distribution as strategy
from trainers import training
from trainers.callbacks import _readable_weights, seed_generator_states, should_validate
from trainers.schedule_test import official_loop

SIZES = {"train": 32, "validation": 16, "test": 16}
# Replica tests compare the loss curves of 1 and 2 replicas. Adam's first steps move every
# weight by about +-lr whatever the size of its gradient, so a weight whose gradient is ~0 takes
# the sign of the float rounding, which depends on how the CPU's kernels sum (it differs between
# machines: at lr 1e-3 the curves drifted 1e-2 apart by epoch 3 on one CPU and matched on
# another). A small learning rate keeps that noise below the tolerance; a replica that saw the
# wrong half of the batch still changes the curve.
REPLICA_TEST_LEARNING_RATE = 1e-5


def tiny_config(tmp_path, setting="fully", **changes):
    model = FullySupervisedConfig() if setting == "fully" else WeaklySupervisedConfig()
    values = dict(
        model=model,
        epochs=4,
        batch_size=8,
        eval_every=2,
        lr_decay_every=2,
        model_dir=str(tmp_path / "run"),
        export_dir="",
        strategy="one_device",
    )
    values.update(changes)
    return run_config.TrainConfig(**values)


class TestReadsSource(data.InMemorySource):
    """Records when each split is requested relative to the end of training."""

    __test__ = False

    def __init__(self, setting):
        super().__init__(setting, random_splits(SIZES, seed=3))
        self.training_done = False

    def evaluation(self, split, batch_size):
        if split == "test":
            assert self.training_done, "the test split was requested before training ended"
        return super().evaluation(split, batch_size)


class MarkEnd(keras.callbacks.Callback):
    def __init__(self, source):
        super().__init__()
        self.source = source

    def on_train_end(self, logs=None):
        self.source.training_done = True


@pytest.mark.parametrize("setting", ["fully", "weakly"])
def test_train_select_test_once(tmp_path, setting):
    config = tiny_config(tmp_path, setting)
    source = TestReadsSource(setting)
    summary = training.run_training(
        config,
        source=source,
        strategy=strategy.make_strategy("one_device"),
        callbacks=[MarkEnd(source)],
    )
    assert source.reads.count("test") == 1 and source.reads[-1] == "test"
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    assert stored["summary"]["test_accuracy_mean"] == summary["summary"]["test_accuracy_mean"]
    run = stored["runs"][0]
    validated = [v["epoch"] for v in run["validations"]]
    assert validated == [e for e in range(4) if should_validate(e, 4, 2)] == [2, 3]
    best = max(run["validations"], key=lambda v: (v["accuracy"], -v["epoch"]))
    assert run["selected_epoch"] == best["epoch"]
    assert [r["epoch"] for r in run["epochs"]] == [0, 1, 2, 3]
    expected_lr = official_loop(4, 1e-3, every=2)
    np.testing.assert_allclose([r["learning_rate"] for r in run["epochs"]], expected_lr, rtol=1e-6)
    assert 0.0 <= run["test_accuracy"] <= 1.0 and run["videos_per_second"] > 0
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == config.to_dict()
    assert list((tmp_path / "run" / "logs" / "seed_1").glob("events.out.tfevents.*"))
    # The selected model reloads and scores the test split as reported.
    model = keras.models.load_model(run["selected_model"])
    test_split = source.splits["test"]
    probabilities = model({"audio": test_split[0], "visual": test_split[1]})[
        "segment_probabilities"
    ]
    accuracy = np.mean(np.argmax(probabilities, -1) == test_split[2])
    assert accuracy == pytest.approx(run["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize(
    "model",
    [
        FullySupervisedConfig(avps_weight=0.0),  # PSP "L_ce" (Table 2)
        AVELFullySupervisedConfig(),  # AVEL as published: no AVPS
        AVELFullySupervisedConfig(avps_weight=100.0),
    ],
    ids=["psp_without_avps", "avel_fully", "avel_fully_avps"],
)
def test_fully_networks_train_with_and_without_avps(tmp_path, model):
    # The pipelines give the AVPS target even where the network trains no AVPS loss.
    config = tiny_config(tmp_path, model=model, epochs=1, eval_every=1)
    source = data.InMemorySource("fully", random_splits(SIZES, seed=3))
    summary = training.run_training(config, source=source)
    run = summary["runs"][0]
    has_avps = any("av_similarity" in name for name in run["epochs"][0])
    assert has_avps == (getattr(model, "avps_weight", 0.0) > 0), sorted(run["epochs"][0])
    reloaded = keras.models.load_model(run["selected_model"])
    assert reloaded.name.startswith("avel") == (model.MODEL == "avel")
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert type(run_config.TrainConfig.from_dict(stored).model) is type(model)


def test_refuses_model_dir_with_other_config(tmp_path):
    config = tiny_config(tmp_path)
    training.prepare_model_dir(config)
    marker = tmp_path / "run" / "keep.txt"
    marker.write_text("x")
    other = config.replace(epochs=5)
    with pytest.raises(UsageError, match="different config"):
        training.prepare_model_dir(other)
    assert marker.exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 4
    training.prepare_model_dir(config.replace(export_dir="elsewhere"))  # Locations may change.
    training.prepare_model_dir(other.replace(overwrite=True))
    assert not marker.exists()


def test_refuses_unwritable_export_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match="not writable"):
        training.check_export_dir(tiny_config(tmp_path, export_dir=str(blocker / "models")))
    assert blocker.read_text() == "not a folder"


class Interrupt(keras.callbacks.Callback):
    """Kills the run in the middle of epoch 3 (after its second of four batches)."""

    epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 3 and batch == 1:
            raise KeyboardInterrupt("simulated kill")


class CtrlCInFinalizer(Interrupt):
    """Presses Ctrl-C at the same point while a finalizer runs, which swallows Python's
    KeyboardInterrupt (as TensorFlow's do): `StopOnCtrlC` must stop the run there."""

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 3 and batch == 1:
            press_ctrl_c_in_a_finalizer()


class EpochCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def resume_config(tmp_path):
    # --deterministic: TF op determinism, so "the same" can be bit for bit.
    return tiny_config(tmp_path, epochs=6, model_dir=str(tmp_path / "run"), deterministic=True)


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    """The seed's result of `resume_config`'s run, trained without a stop."""
    config = resume_config(tmp_path_factory.mktemp("straight"))
    source = data.InMemorySource("fully", random_splits(SIZES, seed=3))
    one = strategy.make_strategy("one_device")
    return training.run_training(config, source=source, strategy=one)["runs"][0]


@pytest.mark.parametrize("stop", [Interrupt, CtrlCInFinalizer])
def test_resume_after_interrupt_selects_the_same_epoch(tmp_path, stop, uninterrupted_run):
    from ave_tf.models import fully_supervised_model

    assert seed_generator_states(fully_supervised_model()), "dropout masks must be re-seeded"
    config = resume_config(tmp_path)
    source = data.InMemorySource("fully", random_splits(SIZES, seed=3))
    one = strategy.make_strategy("one_device")
    with interrupts.handling_ctrl_c(), pytest.raises(KeyboardInterrupt):
        training.run_training(config, source=source, strategy=one, callbacks=[stop()])
    assert not (tmp_path / "run" / "results.json").exists()
    counter = EpochCounter()
    resumed = training.run_training(config, source=source, strategy=one, callbacks=[counter])
    resumed = resumed["runs"][0]
    assert counter.epochs == [3, 4, 5], "the restart must resume at epoch 3, not start over"
    reference = uninterrupted_run
    assert resumed["selected_epoch"] == reference["selected_epoch"]
    assert [r["epoch"] for r in resumed["epochs"]] == list(range(6))
    np.testing.assert_allclose(
        [r["loss"] for r in resumed["epochs"]],
        [r["loss"] for r in reference["epochs"]],
        rtol=1e-4,
    )
    assert resumed["test_accuracy"] == pytest.approx(reference["test_accuracy"])
    # Bit-identical: every epoch's loss and the selected model's weights.
    assert [r["loss"] for r in resumed["epochs"]] == [r["loss"] for r in reference["epochs"]]
    resumed_weights = keras.models.load_model(resumed["selected_model"]).get_weights()
    reference_weights = keras.models.load_model(reference["selected_model"]).get_weights()
    for got, expected in zip(resumed_weights, reference_weights, strict=True):
        np.testing.assert_array_equal(got, expected)
    from tensorflow.python.framework import config as tf_framework_config

    assert not tf_framework_config.is_op_determinism_enabled(), "determinism must not leak"


class KillBeforeResults(data.InMemorySource):
    """Raises KeyboardInterrupt when the test split is first requested: after `fit` ended,
    before the seed's result.json is written."""

    __test__ = False

    def __init__(self, setting, splits):
        super().__init__(setting, splits)
        self.killed = False

    def evaluation(self, split, batch_size):
        if split == "test" and not self.killed:
            self.killed = True
            raise KeyboardInterrupt("simulated kill after fit")
        return super().evaluation(split, batch_size)


def test_kill_between_fit_and_results_does_not_retrain(tmp_path):
    config = tiny_config(tmp_path, epochs=3)
    source = KillBeforeResults("fully", random_splits(SIZES, seed=3))
    with pytest.raises(KeyboardInterrupt):
        training.run_training(config, source=source)
    backup = tmp_path / "run" / "seed_1" / "backup"
    assert (backup / "training_metadata.json").is_file(), "the backup must outlive fit"
    counter = EpochCounter()
    summary = training.run_training(config, source=source, callbacks=[counter])
    assert counter.epochs == [], "every epoch was trained again"
    assert [r["epoch"] for r in summary["runs"][0]["epochs"]] == [0, 1, 2]
    assert (tmp_path / "run" / "seed_1" / "result.json").is_file()
    assert not backup.exists(), "the backup goes once the seed's results are on disk"


def _truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[:96])


def test_damaged_newest_backup_falls_back_to_the_previous(tmp_path, capfd):
    config = tiny_config(tmp_path, epochs=6)
    source = data.InMemorySource("fully", random_splits(SIZES, seed=3))
    with pytest.raises(KeyboardInterrupt):
        training.run_training(config, source=source, callbacks=[Interrupt()])
    backup = tmp_path / "run" / "seed_1" / "backup"
    assert sorted(p.name for p in backup.glob("*.weights.h5")) == [
        "epoch_0002.weights.h5",
        "epoch_0003.weights.h5",
    ]
    _truncate(backup / "epoch_0003.weights.h5")  # A kill while an old version wrote it.
    capfd.readouterr()
    counter = EpochCounter()
    training.run_training(config, source=source, callbacks=[counter])
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1, warnings
    assert "epoch_0003.weights.h5 is damaged" in warnings[0] and "epoch 2" in warnings[0]
    assert counter.epochs == [2, 3, 4, 5]


def test_flipped_bytes_in_the_newest_backup_resume_as_from_the_previous(tmp_path, capfd):
    # 4 KiB XOR-flipped in the middle of the newest backup: still a readable HDF5 file with
    # other optimizer values; its SHA-256 sends the run back to the previous backup.
    source = data.InMemorySource("fully", random_splits(SIZES, seed=3))
    runs = {}
    for name in ("flipped", "previous"):
        config = resume_config(tmp_path / name)
        with pytest.raises(KeyboardInterrupt):
            training.run_training(config, source=source, callbacks=[Interrupt()])
        backup = tmp_path / name / "run" / "seed_1" / "backup"
        newest = backup / "epoch_0003.weights.h5"
        if name == "flipped":
            content = bytearray(newest.read_bytes())
            middle = len(content) // 2
            content[middle : middle + 4096] = bytes(b ^ 0xFF for b in content[middle:][:4096])
            newest.write_bytes(bytes(content))
            assert _readable_weights(newest) is None, "a read check passes it"
        else:  # The same backup folder as it was one epoch earlier.
            metadata = json.loads((backup / "training_metadata.json").read_text())
            (backup / "training_metadata.json").write_text(json.dumps(metadata["previous"]))
            newest.unlink()
        capfd.readouterr()
        counter = EpochCounter()
        runs[name] = training.run_training(
            config,
            source=source,
            strategy=strategy.make_strategy("one_device"),
            callbacks=[counter],
        )["runs"][0]
        assert counter.epochs == [2, 3, 4, 5]
        warnings = [line for line in capfd.readouterr().err.splitlines() if "warning:" in line]
        if name == "flipped":
            assert len(warnings) == 1, warnings
            assert warnings[0].startswith(f"warning: backup {newest} is damaged (SHA-256 ")
            assert warnings[0].endswith("; resuming from epoch 2")
        else:
            assert warnings == []
    flipped, previous = runs["flipped"], runs["previous"]
    assert [r["loss"] for r in flipped["epochs"]] == [r["loss"] for r in previous["epochs"]]
    assert flipped["selected_epoch"] == previous["selected_epoch"]
    assert flipped["test_metrics"] == previous["test_metrics"]
    got = keras.models.load_model(flipped["selected_model"]).get_weights()
    expected = keras.models.load_model(previous["selected_model"]).get_weights()
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_damaged_keras_backup_starts_the_seed_over(tmp_path, capfd):
    # What Keras' own BackupAndRestore left after a kill mid-save: a 96-byte weights file.
    config = tiny_config(tmp_path, epochs=2)
    training.prepare_model_dir(config)
    backup = tmp_path / "run" / "seed_1" / "backup"
    backup.mkdir(parents=True)
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(88))
    (backup / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    source = data.InMemorySource("fully", random_splits(SIZES, seed=3))
    counter = EpochCounter()
    summary = training.run_training(config, source=source, callbacks=[counter])
    assert counter.epochs == [0, 1]
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "starting this seed over" in warnings[0], warnings
    assert "latest.weights.h5" in warnings[0]
    assert summary["runs"][0]["selected_epoch"] in (0, 1)


def test_mirrored_two_devices_matches_one_device(tmp_path):
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) < 2:
        pytest.skip("needs the 2 logical CPU devices conftest.py creates")
    model = FullySupervisedConfig(dropout=0.0)
    source = data.InMemorySource("fully", random_splits(SIZES, seed=5))
    losses = {}
    for name, strat in [
        ("one", strategy.make_strategy("one_device")),
        ("two", strategy.make_strategy("mirrored", devices=cpus[:2])),
    ]:
        config = tiny_config(
            tmp_path,
            model=model,
            epochs=3,
            model_dir=str(tmp_path / name),
            learning_rate=REPLICA_TEST_LEARNING_RATE,
        )
        assert strat.num_replicas_in_sync == (1 if name == "one" else 2)
        run = training.run_training(config, source=source, strategy=strat)["runs"][0]
        losses[name] = [r["loss"] for r in run["epochs"]]
    np.testing.assert_allclose(losses["two"], losses["one"], rtol=2e-4)


def test_mixed_precision_trains_and_restores_the_policy(tmp_path):
    config = tiny_config(tmp_path, epochs=1, eval_every=1, mixed_precision=True)
    source = data.InMemorySource("fully", random_splits(SIZES, seed=3))
    run = training.run_training(config, source=source)["runs"][0]
    assert np.isfinite(run["epochs"][0]["loss"])
    assert keras.config.dtype_policy().name == "float32"
    model = keras.models.load_model(run["selected_model"])
    assert {layer.dtype_policy.name for layer in model.layers if layer.weights} == {
        "mixed_bfloat16"
    }
