"""`feed` reads no batch ahead on CPUs; multi-worker training: 2 worker processes on 127.0.0.1
end with identical weights.

Run as a script, this file is one worker: `TF_CONFIG=... python trainers/multi_worker_test.py
MODEL_DIR` trains a tiny fully supervised run with `--strategy=multi_worker` on in-memory data.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from ave_tf import data
from ave_tf.testing.random_videos import random_splits
from trainers import distribution

REPO = pathlib.Path(__file__).resolve().parents[1]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_feed_on_cpu_reads_each_batch_when_the_step_asks():
    audio, visual, labels = random_splits({"train": 6}, seed=0)["train"]
    store = data.VideoStore.from_arrays(audio, visual, labels)
    taken = []
    take = store.take
    store.take = lambda indices: (taken.append(indices.tolist()), take(indices))[1]
    dataset = data.evaluation_batches(store, "fully", batch_size=2)
    iterator = iter(distribution.feed(tf.distribute.OneDeviceStrategy("/cpu:0"), dataset))
    inputs, targets = next(iterator)
    time.sleep(0.5)  # Time for a read-ahead (the strategy's default buffers) to happen.
    assert taken == [[0, 1]], "a batch was read before the step asked for it"
    np.testing.assert_array_equal(inputs["visual"], visual[:2])
    np.testing.assert_array_equal(targets["segment_logits"], labels[:2])
    later = [next(iterator) for _ in range(2)]
    assert taken == [[0, 1], [2, 3], [4, 5]]
    np.testing.assert_array_equal(later[-1][0]["audio"], audio[4:])


@pytest.mark.slow
def test_two_workers_end_with_identical_weights(tmp_path):
    ports = free_ports(2)
    workers = [f"127.0.0.1:{port}" for port in ports]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(tf_config),
            TF_CPP_MIN_LOG_LEVEL="3",
            PYTHONPATH=str(REPO),
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, str(tmp_path / "run")],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=240)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    import keras

    import ave_tf.models  # noqa: F401

    chief = json.loads((tmp_path / "run" / "results.json").read_text())["runs"][0]
    other = json.loads((tmp_path / "run-worker1" / "results.json").read_text())["runs"][0]
    assert chief["selected_epoch"] == other["selected_epoch"]
    np.testing.assert_allclose(
        [r["loss"] for r in chief["epochs"]], [r["loss"] for r in other["epochs"]], rtol=1e-6
    )
    first = keras.models.load_model(chief["selected_model"]).get_weights()
    second = keras.models.load_model(other["selected_model"]).get_weights()
    assert len(first) == len(second) > 0
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert chief["replicas"] == other["replicas"] == 2
    # The 2 replicas split each global batch: the loss trajectory is the one of a
    # single-device run with the same global batch (so the workers did not merely train
    # two identical copies on the whole data).
    from trainers import distribution, training

    single = training.run_training(
        _config(str(tmp_path / "single"), "one_device"),
        source=data.InMemorySource("fully", _splits()),
        strategy=distribution.make_strategy("one_device"),
    )["runs"][0]
    np.testing.assert_allclose(
        [r["loss"] for r in chief["epochs"]], [r["loss"] for r in single["epochs"]], rtol=2e-4
    )


def _config(model_dir, strategy_name):
    from ave_tf.config import FullySupervisedConfig
    from trainers.config import TrainConfig

    return TrainConfig(
        model=FullySupervisedConfig(dropout=0.0),  # Replica-independent: no dropout masks.
        epochs=3,
        batch_size=8,
        eval_every=1,
        learning_rate=1e-5,  # Below Adam's rounding-sign noise: see training_test.py.
        model_dir=model_dir,
        export_dir="",
        strategy=strategy_name,
    )


def _splits():
    return random_splits({"train": 32, "validation": 16, "test": 16}, seed=3)


def _worker(model_dir):
    from trainers import training

    training.run_training(
        _config(model_dir, "multi_worker"), source=data.InMemorySource("fully", _splits())
    )


if __name__ == "__main__":
    _worker(sys.argv[1])
