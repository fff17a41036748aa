"""Data benchmark: TFRecord encodings, full-size builds, pipeline throughput.

    python benchmarks/data_benchmark.py --work_dir=/tmp/ave_data_bench \
        --parts=encoding,synthetic_full,features,pipeline

Prints each number and writes them into BENCHMARKS.md under "## Data (benchmarks/data_benchmark.py)"
(replacing only that section). Build times and peak RSS come from running `tfds build` in a
child process (peak RSS = the child's ``ru_maxrss``). The full-size `features` set is written by
``tfds_ave.fake_release`` into ``work_dir`` (about 4.3 GB; delete it afterwards).
"""

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.benchmarks_md import write_section  # noqa: E402

_WORK_DIR = flags.DEFINE_string("work_dir", "/tmp/ave_data_bench", "Scratch folder.")
_PARTS = flags.DEFINE_list(
    "parts", ["encoding", "synthetic_full", "features", "pipeline"], "What to measure."
)
_PIPELINE_CONFIG = flags.DEFINE_string(
    "pipeline_config", "synthetic_full", "Config whose train split the pipeline reads."
)
_BATCH = flags.DEFINE_integer("batch_size", 128, "Global batch size of the pipelines.")
_SECTION = "Data (benchmarks/data_benchmark.py)"
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
    from ave_tf import data

    builder = data.prepare_builder(config, data_dir=data_dir)
    lines.append(
        f"\nPipeline throughput, `fully_supervised_dataset(builder, 'train', {batch_size}, "
        f"training=True)` on `{config}`, iterating without a model:\n"
    )
    for cache in (False, True):
        dataset = data.fully_supervised_dataset(
            builder, "train", batch_size, training=True, cache=cache, seed=0
        )
        rates = []
        for _ in range(3):
            start = time.perf_counter()
            videos = sum(int(inputs["audio"].shape[0]) for inputs, _ in dataset)
            rates.append(videos / (time.perf_counter() - start))
        steady = rates[1:] if cache else rates
        line = (
            f"- cache={cache}: {statistics.median(steady):.0f} videos/s "
            f"(epochs: {', '.join(f'{rate:.0f}' for rate in rates)}"
            f"{'; first epoch fills the cache' if cache else ''})"
        )
        print(line)
        lines.append(line)
    lines.append(
        "- compare with the training step's consumption in the Model section "
        "(`python -m benchmarks.model_benchmark`)"
    )


def main(argv: Sequence[str]) -> None:
    del argv
    work = _WORK_DIR.value
    os.makedirs(work, exist_ok=True)
    data_dir = os.path.join(work, "tensorflow_datasets")
    lines = [
        f"Machine: {os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), "
        "shared with other jobs; single runs unless a median is stated.",
        f"Command: `python benchmarks/data_benchmark.py --parts={','.join(_PARTS.value)}`",
        "",
    ]
    if "encoding" in _PARTS.value:
        measure_encoding(lines)
    if "synthetic_full" in _PARTS.value:
        measure_build(lines, "synthetic_full", data_dir)
    if "features" in _PARTS.value:
        from tfds_ave import fake_release

        manual = os.path.join(work, "fake_release")
        if not os.path.exists(os.path.join(manual, "visual_feature_noisy.h5")):
            start = time.perf_counter()
            fake_release.write_fake_release(manual, 4143, 178)
            print(f"wrote the fake release in {time.perf_counter() - start:.0f} s")
        measure_build(lines, "features", data_dir, manual)
    if "pipeline" in _PARTS.value:
        measure_pipeline(lines, _PIPELINE_CONFIG.value, data_dir, _BATCH.value)
    write_section(_SECTION, "\n".join(lines))


if __name__ == "__main__":
    app.run(main)
