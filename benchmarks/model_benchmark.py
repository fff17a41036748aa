"""Throughput and latency of both PSP networks against this machine's matmul roofline.

Run::

    python -m benchmarks.model_benchmark [--repeats 7]

Prints, and writes to BENCHMARKS.md (``--section``, default "Model"): forward and train-step
throughput (videos/s, batch 128, with and without jit_compile, in float32 and in mixed
precision), batch-64 inference, batch-1 latency p50/p99 (Keras ``predict_on_batch`` and a
``tf.function`` around the model), and the fraction of the measured dense-matmul rate
(GFLOP/s, in the row's compute dtype) each figure reaches, using an analytic FLOP count per
video. Mixed precision is the policy the trainers' ``--mixed_precision`` sets: ``mixed_float16``
where TensorFlow sees a GPU, ``mixed_bfloat16`` otherwise.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from ave_tf.ave import AUDIO_DIM, NUM_CLASSES, NUM_SEGMENTS, VISUAL_SHAPE  # noqa: E402
from ave_tf.config import FullySupervisedConfig, WeaklySupervisedConfig  # noqa: E402
from ave_tf.testing.random_batches import compiled_model, random_batch  # noqa: E402
from benchmarks.benchmarks_md import machine, write_section  # noqa: E402
from trainers.training import mixed_policy  # noqa: E402

flags.DEFINE_integer("repeats", 7, "Timed repetitions per figure (the median is reported).")
flags.DEFINE_integer("latency_runs", 200, "Batch-1 calls timed for the latency percentiles.")
flags.DEFINE_list("precisions", ["float32", "mixed"], "Rows per precision: float32, mixed.")
flags.DEFINE_list("jit_compile", ["off", "on"], "Rows per jit_compile setting: off, on.")
flags.DEFINE_string("section", "Model", "BENCHMARKS.md section to write ('' writes none).")
FLAGS = flags.FLAGS

CELLS = VISUAL_SHAPE[0] * VISUAL_SHAPE[1]
CHANNELS = VISUAL_SHAPE[2]


def _dense(rows, fan_in, fan_out):
    return 2 * rows * fan_in * fan_out


def forward_flops_per_video(setting: str) -> int:
    """Multiply-adds x 2 of one video's forward pass (element-wise work is not counted)."""
    t, d, h = NUM_SEGMENTS, 256, 128
    audio_dim = 128
    flops = _dense(t * CELLS, CHANNELS, 512)  # AVGA visual projection: the dominant term
    flops += _dense(t * CELLS, 512, CELLS)  # AVGA content over positions
    flops += _dense(t, audio_dim, 512) + _dense(t, 512, CELLS) + _dense(t * CELLS, CELLS, 1)
    flops += 2 * t * CELLS * CHANNELS  # attention-weighted sum
    if setting == "fully":
        flops += _dense(t, AUDIO_DIM, 256) + _dense(t, 256, 128)  # fa
        flops += _dense(t, CHANNELS, 256) + _dense(t, 256, 128)  # fv
    else:
        flops += _dense(t, CHANNELS, 128)  # linear_v
    flops += 2 * 2 * t * _dense(1, 128 + h, 4 * h)  # two Bi-LSTMs (2 directions each)
    projections = 6 if setting == "fully" else 4
    flops += projections * _dense(t, d, d) + 4 * t * t * d  # PSP projections, beta, propagation
    flops += _dense(t, d, 64) + _dense(t, 64, NUM_CLASSES)
    return flops


def train_flops_per_video(setting: str) -> int:
    """Forward + backward: backward costs twice the forward, except that the first layer
    needs no gradient with respect to its (input) visual features."""
    first_layer_input_gradient = _dense(NUM_SEGMENTS * CELLS, CHANNELS, 512)
    return 3 * forward_flops_per_video(setting) - first_layer_input_gradient


def matmul_gflops(repeats: int, dtype: str = "float32") -> float:
    """Measured dense matmul rate in ``dtype`` on the AVGA projection's shape (128 videos)."""
    a = tf.random.uniform((128 * NUM_SEGMENTS * CELLS, CHANNELS), dtype=dtype)
    b = tf.random.uniform((CHANNELS, 512), dtype=dtype)
    matmul = tf.function(tf.linalg.matmul)
    matmul(a, b).numpy()
    return (
        _dense(a.shape[0], CHANNELS, 512)
        / median_seconds(lambda: matmul(a, b).numpy(), repeats)
        / 1e9
    )


def median_seconds(run, repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``run()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(config, policy: str, jit_compile: bool, repeats: int, latency_runs: int) -> dict:
    """Videos/s of a training step (batch 128), of inference at batch 128 and 64, and batch-1
    latency percentiles (ms) of the compiled prediction path, under dtype ``policy``."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return _measure(compiled_model(config, jit_compile), jit_compile, repeats, latency_runs)
    finally:
        keras.config.set_dtype_policy(previous)


def _measure(model, jit_compile: bool, repeats: int, latency_runs: int) -> dict:
    # Tensors, as tf.data hands them to fit/predict: the numpy -> tensor copy of 128 MB of
    # visual features per batch is the input pipeline's cost, not the model's.
    inputs, targets = random_batch(128)
    inputs = {name: tf.constant(value) for name, value in inputs.items()}
    targets = {name: tf.constant(targets[name]) for name in model.output}
    model.train_on_batch(inputs, targets)  # trace and compile
    train = 128 / median_seconds(lambda: model.train_on_batch(inputs, targets), repeats)
    forward = {}
    for size in (128, 64):
        batch = {name: value[:size] for name, value in inputs.items()}
        model.predict_on_batch(batch)
        forward[size] = size / median_seconds(lambda b=batch: model.predict_on_batch(b), repeats)
    one = {name: value[:1] for name, value in inputs.items()}
    keras_p50, keras_p99 = _latency_ms(model.predict_on_batch, one, latency_runs)
    call = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    call_p50, call_p99 = _latency_ms(
        lambda x: call(x)["segment_probabilities"].numpy(), one, latency_runs
    )
    return {
        "train": train,
        "forward128": forward[128],
        "forward64": forward[64],
        "p50": keras_p50,
        "p99": keras_p99,
        "call_p50": call_p50,
        "call_p99": call_p99,
    }


def _latency_ms(predict, inputs, runs: int) -> tuple[float, float]:
    """p50 and p99 in ms of ``predict(inputs)`` after a warm-up call."""
    predict(inputs)
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        predict(inputs)
        latencies.append((time.perf_counter() - start) * 1e3)
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.precisions) - {"float32", "mixed"}) + sorted(
        set(FLAGS.jit_compile) - {"off", "on"}
    )
    if unknown:
        raise app.UsageError(f"unknown --precisions/--jit_compile values: {unknown}")
    policies = {"float32": "float32", "mixed": mixed_policy()}
    print(f"machine: {machine()}; TensorFlow devices: {_devices()}")
    rates = {}
    for precision in FLAGS.precisions:
        compute = keras.DTypePolicy(policies[precision]).compute_dtype
        rates[precision] = matmul_gflops(FLAGS.repeats, compute)
        print(f"dense matmul rate, {compute}: {rates[precision]:.1f} GFLOP/s", flush=True)
    rows = []
    for setting, config in (
        ("fully", FullySupervisedConfig()),
        ("weakly", WeaklySupervisedConfig()),
    ):
        train_flops = train_flops_per_video(setting)
        forward_flops = forward_flops_per_video(setting)
        for precision in FLAGS.precisions:
            roof_train = rates[precision] * 1e9 / train_flops
            roof_forward = rates[precision] * 1e9 / forward_flops
            for jit in FLAGS.jit_compile:
                figures = measure(
                    config, policies[precision], jit == "on", FLAGS.repeats, FLAGS.latency_runs
                )
                rows.append(
                    f"| {setting} | {policies[precision]} | {jit} "
                    f"| {figures['train']:.0f} ({figures['train'] / roof_train:.0%}) "
                    f"| {figures['forward128']:.0f} "
                    f"({figures['forward128'] / roof_forward:.0%}) "
                    f"| {figures['forward64']:.0f} ({figures['forward64'] / roof_forward:.0%}) "
                    f"| {figures['p50']:.2f} / {figures['p99']:.2f} "
                    f"| {figures['call_p50']:.2f} / {figures['call_p99']:.2f} |"
                )
                print(rows[-1], flush=True)
            roof = f"{roof_forward:.0f}"
            rows.append(
                f"| {setting} roofline | {policies[precision]} | | {roof_train:.0f} | {roof} "
                f"| {roof} | | |"
            )
        print(
            f"{setting}: {forward_flops / 1e6:.0f} MFLOP/video forward, "
            f"{train_flops / 1e6:.0f} MFLOP/video train step"
        )
    command = (
        f"python -m benchmarks.model_benchmark --repeats {FLAGS.repeats} "
        f"--latency_runs {FLAGS.latency_runs} --precisions={','.join(FLAGS.precisions)} "
        f"--jit_compile={','.join(FLAGS.jit_compile)}"
    )
    matmul = "; ".join(
        f"{keras.DTypePolicy(policies[p]).compute_dtype} **{rates[p]:.1f} GFLOP/s**"
        for p in FLAGS.precisions
    )
    body = "\n".join(
        [
            f"Command: `{command}`  ",
            f"Machine: {machine()}; TensorFlow devices: {_devices()}; shared with other jobs "
            "while measured; the rows of one setting ran back to back.  ",
            f"Measured dense-matmul rate (AVGA projection shape): {matmul}; the roofline rows "
            "divide the rate of the row's compute dtype by the analytic FLOPs per video "
            f"(fully {forward_flops_per_video('fully') / 1e6:.0f} MFLOP forward / "
            f"{train_flops_per_video('fully') / 1e6:.0f} MFLOP train; weakly "
            f"{forward_flops_per_video('weakly') / 1e6:.0f} / "
            f"{train_flops_per_video('weakly') / 1e6:.0f}).",
            "",
            "Inputs are float32 tensors already in memory, as tf.data delivers them. The "
            "mixed-precision rows use the policy of the trainers' `--mixed_precision` "
            "(`mixed_float16` on a GPU, `mixed_bfloat16` on a CPU): weights in float32, "
            "computation in the low-precision dtype.",
            "",
            "Videos/s (median of the repeats; in brackets the fraction of the roofline) and "
            "batch-1 latency in ms (p50 / p99) of Keras `predict_on_batch` and of the model "
            "called inside one `tf.function` (jit_compile as in the row), outputs fetched:",
            "",
            "| model | dtype policy | jit_compile | train step, batch 128 | inference, batch 128 "
            "| inference, batch 64 | batch-1 `predict_on_batch` | batch-1 `tf.function` |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    if FLAGS.section:
        write_section(FLAGS.section, body)
    return 0


def _devices() -> str:
    return ", ".join(device.name for device in tf.config.list_logical_devices()) or "none"


if __name__ == "__main__":
    sys.exit(app.run(main))
