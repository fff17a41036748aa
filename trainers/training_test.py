"""End-to-end training on tiny in-memory data: selection, results, resume, replicas."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from ave_tf import data
from ave_tf.config import FullySupervisedConfig, WeaklySupervisedConfig
from ave_tf.testing.random_videos import random_splits
from trainers import run_config, strategy, training
from trainers.epoch_seeds import seed_generator_states
from trainers.errors import UsageError
from trainers.schedule_test import official_loop
from trainers.selection import should_validate

SIZES = {"train": 32, "validation": 16, "test": 16}


def tiny_config(tmp_path, setting="fully", **changes):
    model = FullySupervisedConfig() if setting == "fully" else WeaklySupervisedConfig()
    values = dict(
        setting=setting,
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
    audio, visual, labels = source.splits["test"]
    probabilities = model({"audio": audio, "visual": visual})["segment_probabilities"]
    accuracy = np.mean(np.argmax(probabilities, -1) == labels)
    assert accuracy == pytest.approx(run["test_accuracy"], abs=1e-6)


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


class EpochCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_resume_after_interrupt_selects_the_same_epoch(tmp_path):
    from ave_tf.models import fully_supervised_model

    assert seed_generator_states(fully_supervised_model()), "dropout masks must be re-seeded"
    config = tiny_config(tmp_path, epochs=6, model_dir=str(tmp_path / "resumed"))
    source = data.InMemorySource("fully", random_splits(SIZES, seed=3))
    one = strategy.make_strategy("one_device")
    with pytest.raises(KeyboardInterrupt):
        training.run_training(config, source=source, strategy=one, callbacks=[Interrupt()])
    assert not (tmp_path / "resumed" / "results.json").exists()
    counter = EpochCounter()
    resumed = training.run_training(config, source=source, strategy=one, callbacks=[counter])
    resumed = resumed["runs"][0]
    assert counter.epochs == [3, 4, 5], "the restart must resume at epoch 3, not start over"
    reference = training.run_training(
        config.replace(model_dir=str(tmp_path / "straight")), source=source, strategy=one
    )["runs"][0]
    assert resumed["selected_epoch"] == reference["selected_epoch"]
    assert [r["epoch"] for r in resumed["epochs"]] == list(range(6))
    np.testing.assert_allclose(
        [r["loss"] for r in resumed["epochs"]],
        [r["loss"] for r in reference["epochs"]],
        rtol=1e-4,
    )
    assert resumed["test_accuracy"] == pytest.approx(reference["test_accuracy"])


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
        config = tiny_config(tmp_path, model=model, epochs=3, model_dir=str(tmp_path / name))
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
