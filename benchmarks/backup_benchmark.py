"""What the SHA-256 of each training backup costs: bytes, and milliseconds to write and check.

    python -m benchmarks.backup_benchmark [--repeats 20]

Builds and compiles the training view of each trainer's default network (PSP, fully and weakly
supervised, with its Adam state built, as `trainers.training` does), then writes ``--repeats``
backups through `trainers.callbacks.Backup` (weights and optimizer state, atomically, then the
metadata record). Per backup it times the SHA-256 of the weights file (`_save_model` hashes the
file it just wrote, from the page cache) and the whole write; per resume, a fresh `Backup` on
the folder (SHA-256 of the newest backup, then every dataset read) against the read check
alone. Writes BENCHMARKS.md ("Training: backup checksums"): medians over the repeats, the
backup file size and the bytes the digests add to ``training_metadata.json``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402

from benchmarks.benchmarks_md import machine, write_section  # noqa: E402

_REPEATS = flags.DEFINE_integer("repeats", 20, "Backups written (and resumes timed) per model.")
_WRITE = flags.DEFINE_boolean("write", True, "Write the section into BENCHMARKS.md.")


def _milliseconds(function) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1e3


def measure(model_config, repeats: int) -> dict:
    """Medians (ms) of one network's backups and resumes, and the sizes involved."""
    from ave_tf.config import FullySupervisedConfig
    from trainers import callbacks, distribution, training
    from trainers.config import TrainConfig

    config = TrainConfig(model=model_config or FullySupervisedConfig(), export_dir="")
    one = distribution.make_strategy("one_device")
    _, model = training.build_and_compile(config, one, steps_per_epoch=1)
    with one.scope():
        model.optimizer.build(model.trainable_variables)
    hashes, writes, resumes, reads = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        backup = callbacks.Backup(folder)
        backup.set_model(model)
        for epoch in range(repeats):
            writes.append(_milliseconds(lambda epoch=epoch: backup.on_epoch_end(epoch)))
            newest = backup.directory / backup._latest["weights"]
            hashes.append(_milliseconds(lambda newest=newest: callbacks._sha256(newest)))
            resumes.append(_milliseconds(lambda: callbacks.Backup(folder)))
            reads.append(_milliseconds(lambda newest=newest: callbacks._readable_weights(newest)))
        metadata = json.loads(backup.metadata_path.read_text())
        without = {k: v for k, v in metadata.items() if k != "sha256"}
        without["previous"] = {k: v for k, v in metadata["previous"].items() if k != "sha256"}
        added = len(json.dumps(metadata, indent=2, sort_keys=True)) - len(
            json.dumps(without, indent=2, sort_keys=True)
        )
        size = newest.stat().st_size
    return {
        "size": size,
        "metadata_bytes": added,
        "hash": statistics.median(hashes),
        "write": statistics.median(writes),
        "resume": statistics.median(resumes),
        "read": statistics.median(reads),
    }


def main(argv):
    del argv
    from ave_tf.config import WeaklySupervisedConfig

    rows = []
    for name, model_config in [("PSP fully", None), ("PSP weakly", WeaklySupervisedConfig())]:
        figures = measure(model_config, _REPEATS.value)
        rows.append(
            f"| {name} | {figures['size'] / 2**20:.1f} MiB | {figures['metadata_bytes']} | "
            f"{figures['hash']:.1f} | {figures['write']:.1f} | "
            f"{figures['hash'] / figures['write']:.1%} | {figures['resume']:.1f} | "
            f"{figures['read']:.1f} |"
        )
    body = "\n".join(
        [
            f"Machine: {machine()}; shared with other jobs while measured.  ",
            f"Command: `python -m benchmarks.backup_benchmark --repeats {_REPEATS.value}`; "
            "medians over the backups written (weights and Adam state, `trainers.callbacks."
            "Backup`) and the resumes (a fresh `Backup` on the folder).",
            "",
            "| network | backup file | digest bytes in the metadata | SHA-256 ms | whole backup "
            "ms | SHA-256 share | resume check ms (SHA-256 + read) | read check alone ms |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    if _WRITE.value:
        write_section("Training: backup checksums (benchmarks/backup_benchmark.py)", body)


if __name__ == "__main__":
    app.run(main)
