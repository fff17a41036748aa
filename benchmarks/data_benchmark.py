"""Data benchmark: TFRecord encodings, full-size builds, the training pipeline and its memory.

    python benchmarks/data_benchmark.py --work_dir=/tmp/ave_data_bench \
        --parts=encoding,synthetic_full,features,pipeline,training --pipeline_config=features

Prints each number and writes two sections of BENCHMARKS.md, each only when its parts ran:
"Data: encodings and builds" (``encoding``, ``synthetic_full``, ``features``) and "Data:
training pipeline" (``pipeline``, ``training``). Build and training times and peak RSS come
from a child process (peak RSS = the child's ``ru_maxrss``, as ``/usr/bin/time -v``). The
full-size ``features`` set is built from a fake release that ``tfds_ave.fake_release`` writes
into ``work_dir`` (about 4.1 GB + 4.1 GB of TFRecords; delete it afterwards).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.benchmarks_md import machine, write_section  # noqa: E402

_WORK_DIR = flags.DEFINE_string("work_dir", "/tmp/ave_data_bench", "Scratch folder.")
_PARTS = flags.DEFINE_list(
    "parts",
    ["encoding", "synthetic_full", "features", "pipeline", "training"],
    "What to measure.",
)
_PIPELINE_CONFIG = flags.DEFINE_string(
    "pipeline_config", "synthetic_full", "Config whose train split the pipeline and training read."
)
_BATCH = flags.DEFINE_integer("batch_size", 128, "Global batch size of the pipelines.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Epochs of each training run (part 'training').")
_BUILDS_SECTION = "Data: encodings and builds (benchmarks/data_benchmark.py)"
_PIPELINE_SECTION = "Data: training pipeline (benchmarks/data_benchmark.py)"
_BUILD_PARTS = ("encoding", "synthetic_full", "features")
_PIPELINE_PARTS = ("pipeline", "training")
_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _du(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


_MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _timed_child(command: list[str]) -> tuple[float, float]:
    """Runs a command; returns (wall seconds, peak RSS GiB of the command's process tree's
    largest process), measured in a fresh wrapper process so earlier runs do not count."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        check=True,
        cwd=_REPO,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    peak_kib = int(result.stdout.strip().splitlines()[-1])
    return wall, peak_kib / 2**20


def _tfds_build(config: str, data_dir: str, manual_dir: str | None = None) -> tuple[float, float]:
    tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
    command = [tfds_cli, "build", "tfds_ave", f"--config={config}", f"--data_dir={data_dir}"]
    if manual_dir:
        command.append(f"--manual_dir={manual_dir}")
    return _timed_child(command)


def measure_encoding(lines: list[str], videos: int = 64) -> None:
    """Bytes per video and decode throughput of the three Tensor encodings."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from tfds_ave import synthetic

    examples = [example for _, example in synthetic.generate("train", videos, seed=0)]
    lines.append(f"Encodings ({videos} synthetic videos, decode = parse + decode in tf.data):\n")
    lines.append("| encoding | bytes / video | encode videos/s | decode videos/s (median of 3) |")
    lines.append("|---|---|---|---|")
    for encoding in (
        tfds.features.Encoding.BYTES,
        tfds.features.Encoding.ZLIB,
        tfds.features.Encoding.NONE,
    ):
        features = tfds.features.FeaturesDict(
            {
                "audio": tfds.features.Tensor(shape=(10, 128), dtype=np.float32, encoding=encoding),
                "visual": tfds.features.Tensor(
                    shape=(10, 7, 7, 512), dtype=np.float32, encoding=encoding
                ),
            }
        )
        serializer = tfds.core.example_serializer.ExampleSerializer(features.get_serialized_info())
        start = time.perf_counter()
        records = [
            serializer.serialize_example(
                features.encode_example({"audio": e["audio"], "visual": e["visual"]})
            )
            for e in examples
        ]
        encode_rate = videos / (time.perf_counter() - start)
        size = statistics.mean(len(r) for r in records)
        parser = tfds.core.example_parser.ExampleParser(features.get_serialized_info())
        dataset = (
            tf.data.Dataset.from_tensor_slices(records)
            .repeat(4)
            .map(parser.parse_example, num_parallel_calls=tf.data.AUTOTUNE)
            .map(features.decode_example, num_parallel_calls=tf.data.AUTOTUNE)
        )
        rates = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in dataset:
                pass
            rates.append(4 * videos / (time.perf_counter() - start))
        line = (
            f"| {encoding.value} | {size / 2**20:.3f} MiB | {encode_rate:.0f} | "
            f"{statistics.median(rates):.0f} |"
        )
        print(line)
        lines.append(line)
    lines.append("")


def measure_build(lines: list[str], config: str, data_dir: str, manual_dir=None) -> None:
    wall, rss = _tfds_build(config, data_dir, manual_dir)
    records = _du(os.path.join(data_dir, "tfds_ave", config))
    line = (
        f"- `tfds build tfds_ave --config={config}`: {wall:.0f} s wall, peak RSS {rss:.2f} GiB, "
        f"TFRecords {records / 2**30:.2f} GiB"
    )
    if manual_dir:
        raw = _du(manual_dir)
        line += f" (raw HDF5 release {raw / 2**30:.2f} GiB, ratio {records / raw:.2f})"
    print(line)
    lines.append(line)


def measure_pipeline(lines: list[str], config: str, data_dir: str, batch_size: int) -> None:
    """Videos/s of the training pipeline alone (no model), streamed and from memory."""
    from ave_tf import data

    lines.append(
        f"\nTraining pipeline alone, `TfdsSource({config!r}, 'fully', in_memory=...)"
        f".training('train', {batch_size}, seed=0)` iterated without a model:\n"
    )
    for in_memory in (False, True):
        start = time.perf_counter()
        source = data.TfdsSource(config, "fully", data_dir=data_dir, in_memory=in_memory)
        stream = source.training("train", batch_size, seed=0)
        ready = time.perf_counter() - start
        batches = iter(stream.dataset)
        rates = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(stream.steps_per_epoch):
                next(batches)
            rates.append(stream.examples_per_epoch / (time.perf_counter() - start))
        line = (
            f"- {'in memory' if in_memory else 'streamed'}: {statistics.median(rates):.0f} "
            f"videos/s (epochs: {', '.join(f'{rate:.0f}' for rate in rates)}); "
            f"{ready:.1f} s before the first epoch"
            f"{' (reading the split into memory)' if in_memory else ''}"
        )
        print(line)
        lines.append(line)


def measure_training(lines: list[str], config: str, data_dir: str, work: str) -> None:
    """Peak RSS and training videos/s of `python -m trainers.fully`, streamed and in memory."""
    command = [
        sys.executable,
        "-m",
        "trainers.fully",
        f"--dataset={config}",
        f"--data_dir={data_dir}",
        f"--epochs={_EPOCHS.value}",
        f"--batch_size={_BATCH.value}",
        "--seeds=1",
        "--export_dir=",
        "--overwrite",
    ]
    lines.append(
        f"Training: `python -m trainers.fully --dataset={config} --epochs={_EPOCHS.value} "
        f"--batch_size={_BATCH.value} --seeds=1 --export_dir=` and the same with "
        "`--in_memory` (validation after the last epoch, then the test split), each in a child "
        "process; peak RSS = the child's `ru_maxrss` (what `/usr/bin/time -v` reports):\n"
    )
    for variant, extra in (("streamed", []), ("in memory", ["--in_memory"])):
        model_dir = os.path.join(work, f"train_{variant.replace(' ', '_')}")
        shutil.rmtree(model_dir, ignore_errors=True)
        wall, rss = _timed_child([*command, *extra, f"--model_dir={model_dir}"])
        with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as handle:
            run = json.load(handle)["runs"][0]
        speeds = ", ".join(f"{record['videos_per_second']:.1f}" for record in run["epochs"])
        line = (
            f"- {variant}: peak RSS {rss:.2f} GiB; training videos/s per epoch {speeds} "
            f"(epoch time without validation); {wall:.0f} s wall"
        )
        print(line)
        lines.append(line)


def main(argv: Sequence[str]) -> None:
    del argv
    work = _WORK_DIR.value
    os.makedirs(work, exist_ok=True)
    data_dir = os.path.join(work, "tensorflow_datasets")
    config = _PIPELINE_CONFIG.value
    parts = _PARTS.value
    unknown = sorted(set(parts) - set(_BUILD_PARTS) - set(_PIPELINE_PARTS))
    if unknown:
        raise app.UsageError(f"unknown --parts {', '.join(unknown)}")

    def preamble(section_parts):
        chosen = [part for part in parts if part in section_parts]
        command = f"python benchmarks/data_benchmark.py --parts={','.join(chosen)}"
        if any(part in _PIPELINE_PARTS for part in chosen):
            command += f" --pipeline_config={config} --epochs={_EPOCHS.value}"
        return [
            f"Machine: {machine()}; shared with other jobs while measured, single runs "
            "unless a median is stated.",
            f"Command: `{command}`",
            "",
        ]

    if any(part in _BUILD_PARTS for part in parts):
        lines = preamble(_BUILD_PARTS)
        if "encoding" in parts:
            measure_encoding(lines)
        if "synthetic_full" in parts:
            measure_build(lines, "synthetic_full", data_dir)
        if "features" in parts:
            from tfds_ave import fake_release

            manual = os.path.join(work, "fake_release")
            if not os.path.exists(os.path.join(manual, "visual_feature_noisy.h5")):
                start = time.perf_counter()
                fake_release.write_fake_release(manual, 4143, 178)
                print(f"wrote the fake release in {time.perf_counter() - start:.0f} s")
            measure_build(lines, "features", data_dir, manual)
        write_section(_BUILDS_SECTION, "\n".join(lines))
    if any(part in _PIPELINE_PARTS for part in parts):
        lines = preamble(_PIPELINE_PARTS)
        # Training first: the in-memory split of the pipeline part stays in this process.
        if "training" in parts:
            measure_training(lines, config, data_dir, work)
        if "pipeline" in parts:
            measure_pipeline(lines, config, data_dir, _BATCH.value)
        write_section(_PIPELINE_SECTION, "\n".join(lines))


if __name__ == "__main__":
    app.run(main)
