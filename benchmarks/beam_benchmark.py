"""Build throughput of ``tfds build tfds_ave --config=videos`` on Apache Beam's DirectRunner.

Run::

    python -m benchmarks.beam_benchmark [--videos 8] [--width 480 --height 360]

Writes ``--videos`` generated 10 s clips (25 fps H.264 + AAC, ``--width`` x ``--height``, as
the "Extraction" benchmark) and an AVE-style manual directory for them, then builds the
``videos`` config with 1 Beam worker (in process) and with 2 (``direct_num_workers=2,
direct_running_mode=multi_processing``), timing ``download_and_prepare`` and sampling the peak
RSS of the driver and of every worker process. The extractor is the tests' tiny random one
(``ave_tf.testing.tiny_extractors``: decoding, resizing, the VGGish front end and two small
layers), so a build measures everything but the two networks; the same files are also
extracted directly, in one warm process, and the difference per video is the pipeline's own
cost (Beam, TFDS encoding and writing). The extrapolation to AVE and VGGSound-AVEL100k adds
that cost to the per-video cost of the real networks measured by
``benchmarks/extraction_benchmark.py`` (``--extraction_seconds``). Writes BENCHMARKS.md
("Build from the videos").
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import psutil  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks.benchmarks_md import machine, write_section  # noqa: E402

flags.DEFINE_integer("videos", 8, "Generated clips (one annotation row each).")
flags.DEFINE_integer("width", 480, "Frame width of the clips (YouTube 360p: 480).")
flags.DEFINE_integer("height", 360, "Frame height of the clips.")
flags.DEFINE_float(
    "extraction_seconds",
    63.94,
    "Seconds per 10 s video of the real extraction on one process of this CPU: decode 1.05 + "
    "VGGish 0.71 + VGG19 batch 64 62.18 (BENCHMARKS.md, 'Extraction').",
)
flags.DEFINE_float(
    "vgg19_seconds", 62.18, "Of --extraction_seconds, the VGG19 part (BENCHMARKS.md, 'Extraction')."
)
flags.DEFINE_float(
    "gpu_vgg19_seconds",
    0.125,
    "VGG19 seconds per video on a GPU worker (BENCHMARKS.md 'Extraction': 6.2 TFLOP at a "
    "sustained 50 TFLOP/s; an assumption, not measured here).",
)
FLAGS = flags.FLAGS

AVE_VIDEOS = 4143
VGGSOUND_AVEL_VIDEOS = 101_072
FPS = 25
DECODED_FRAMES = 10 * FPS  # every frame of the 10 s span is decoded
VGG19_FRAMES = 160  # 16 sampled frames per second go through VGG19
TINY = "ave_tf.testing.tiny_extractors:tiny_feature_extractor"


class PeakRss:
    """Samples the RSS of this process and its descendants every 0.1 s; ``peaks`` maps each
    pid to ``(role, peak bytes)``."""

    def __init__(self):
        self.peaks: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            for process in [me, *me.children(recursive=True)]:
                try:
                    rss = process.memory_info().rss
                    if process.pid == me.pid:
                        role = "driver"
                    elif process.name().startswith("python") and any(
                        "sdk_worker_main" in part for part in process.cmdline()
                    ):
                        role = "worker"
                    else:
                        continue  # not a Beam worker (e.g. a launcher shell)
                except psutil.Error:
                    continue
                previous = self.peaks.get(process.pid, (role, 0))[1]
                self.peaks[process.pid] = (role, max(previous, rss))
            time.sleep(0.1)

    def of(self, role: str) -> list[float]:
        return sorted(peak / 2**30 for r, peak in self.peaks.values() if r == role)


def build_seconds(manual_dir, data_dir, beam_args: list[str]) -> tuple[float, PeakRss]:
    import tensorflow_datasets as tfds
    from apache_beam.options.pipeline_options import PipelineOptions

    from tfds_ave.tfds_ave_dataset_builder import BuilderConfig

    config = BuilderConfig(
        name="videos_benchmark", source="videos", extractor_factory=TINY, batch_size=32
    )
    builder = tfds.builder("tfds_ave", config=config, data_dir=str(data_dir))
    download_config = tfds.download.DownloadConfig(
        manual_dir=str(manual_dir), beam_options=PipelineOptions(beam_args)
    )
    with PeakRss() as rss:
        started = time.perf_counter()
        builder.download_and_prepare(download_config=download_config)
        seconds = time.perf_counter() - started
    return seconds, rss


def write_manual_dir(manual_dir: str, count: int) -> list[str]:
    """An AVE-style manual directory of ``count`` generated clips; returns their paths."""
    from ave_tf.testing import clips
    from tfds_ave import fake_release, release, videos

    fake_release.write_fake_release(manual_dir, count, seed=0, with_label_files=False)
    for name in (release.AUDIO, release.VISUAL):
        os.remove(os.path.join(manual_dir, name))
    with open(os.path.join(manual_dir, release.ANNOTATIONS), encoding="utf-8") as handle:
        ids = [line.split("&")[1] for line in handle.read().splitlines()]
    os.makedirs(os.path.join(manual_dir, videos.VIDEOS_DIR))
    spec = clips.ClipSpec(seconds=10, channels=2, width=FLAGS.width, height=FLAGS.height)
    folder = os.path.join(manual_dir, videos.VIDEOS_DIR)
    return [str(clips.write_clip(os.path.join(folder, f"{i}.mp4"), spec)) for i in ids]


def main(argv):
    del argv
    from ave_tf.testing.tiny_extractors import tiny_feature_extractor

    print(f"machine: {machine()}")
    load_before = os.getloadavg()[0]
    folder = tempfile.mkdtemp(prefix="beam_benchmark_")
    half = FLAGS.videos // 2
    paths = write_manual_dir(os.path.join(folder, "manual"), FLAGS.videos)
    write_manual_dir(os.path.join(folder, "half"), half)

    extractor = tiny_feature_extractor(32)
    extractor.extract(paths[0])  # trace once, as a warm worker would have
    direct = []
    for path in paths:
        started = time.perf_counter()
        extractor.extract(path)
        direct.append(time.perf_counter() - started)
    direct_per_video = statistics.median(direct)
    print(f"direct tiny extraction: {direct_per_video:.2f} s / video (median of {len(paths)})")

    runs = {}
    for workers, args in [
        (1, []),
        (2, ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]),
    ]:
        data_dir = os.path.join(folder, f"data{workers}")
        seconds, rss = build_seconds(os.path.join(folder, "manual"), data_dir, args)
        runs[workers] = (seconds, rss)
        print(
            f"{workers} worker(s): {seconds:.1f} s for {FLAGS.videos} videos; peak RSS driver "
            f"{rss.of('driver')} GiB, workers {rss.of('worker')} GiB"
        )
    half_seconds, _ = build_seconds(os.path.join(folder, "half"), os.path.join(folder, "h"), [])
    print(f"1 worker, {half} videos: {half_seconds:.1f} s")
    load_after = os.getloadavg()[0]

    # Time per further video with 1 worker: the start-up (Beam, the extractor's build and
    # trace, TFDS metadata) cancels out between the two builds.
    marginal = (runs[1][0] - half_seconds) / (FLAGS.videos - half)
    startup = runs[1][0] - marginal * FLAGS.videos
    overhead = max(0.0, marginal - direct_per_video)
    real_cpu = FLAGS.extraction_seconds + overhead
    speedup = runs[1][0] / runs[2][0]
    rows = []
    for workers, (seconds, rss) in runs.items():
        rate = FLAGS.videos / seconds
        worker_rss = ", ".join(f"{peak:.2f}" for peak in rss.of("worker")) or "(in the driver)"
        rows.append(
            f"| {workers} | {seconds:.1f} | {rate:.3f} | {rate * DECODED_FRAMES:.0f} | "
            f"{max(rss.of('driver')):.2f} | {worker_rss} |"
        )

    def hours(count: int, seconds_per_video: float, parallel: float = 1.0) -> str:
        return f"{count * seconds_per_video / parallel / 3600:,.1f} h"

    cpu_part = FLAGS.extraction_seconds - FLAGS.vgg19_seconds + overhead  # one core, per video
    gpu_per_video = max(FLAGS.gpu_vgg19_seconds, cpu_part / 8)
    command = (
        f"python -m benchmarks.beam_benchmark --videos {FLAGS.videos} "
        f"--width {FLAGS.width} --height {FLAGS.height}"
    )
    body = f"""
Command: `{command}`\\
Machine: {machine()}; 1-minute load average {load_before:.1f} before, {load_after:.1f} after
(other jobs shared the 2 cores: with a load above 2 every figure below is a lower bound).

{FLAGS.videos} generated 10 s clips ({FLAGS.width}x{FLAGS.height}, 25 fps H.264 + AAC stereo),
`tfds_ave` config `videos` built on the DirectRunner with the tests' tiny random extractor:
everything real but the two networks (decoding and resizing {DECODED_FRAMES} frames per video,
the VGGish front end, TFDS encoding and writing). Peak RSS sampled every 0.1 s.

| Beam workers | build (s) | videos/s | decoded frames/s | driver peak RSS (GiB) | \
worker peak RSS (GiB) |
|---|---|---|---|---|---|
{chr(10).join(rows)}

With 1 worker, {half} videos took {half_seconds:.1f} s: each further video costs {marginal:.2f} s
(the start-up, {startup:.0f} s here, cancels out). The same files extracted directly in one
warm process: {direct_per_video:.2f} s per video (median), so the pipeline's own cost (Beam,
TFDS encoding and writing) is {overhead:.2f} s per video. 2 workers built {speedup:.2f}x as fast
as 1 at {FLAGS.videos} videos, their start-up (each worker imports TensorFlow and builds its
extractor) included.

Extrapolation (not measured end to end): the real networks cost {FLAGS.extraction_seconds:.2f} s
per video in one process on this CPU (BENCHMARKS "Extraction": decode, VGGish, and VGG19
{FLAGS.vgg19_seconds:.2f} s, which already uses both cores), so a video costs about
{real_cpu:.1f} s in the build; a second Beam worker on these 2 cores cannot speed up the
compute-bound VGG19.

| dataset | videos | this 2-core CPU | 16 such machines | one GPU worker with 8 vCPUs |
|---|---|---|---|---|
| AVE | {AVE_VIDEOS:,} | {hours(AVE_VIDEOS, real_cpu)} | {hours(AVE_VIDEOS, real_cpu, 16)} \
| {hours(AVE_VIDEOS, gpu_per_video)} |
| VGGSound-AVEL100k | {VGGSOUND_AVEL_VIDEOS:,} | {hours(VGGSOUND_AVEL_VIDEOS, real_cpu)} \
| {hours(VGGSOUND_AVEL_VIDEOS, real_cpu, 16)} | {hours(VGGSOUND_AVEL_VIDEOS, gpu_per_video)} |

GPU column: VGG19 at {FLAGS.gpu_vgg19_seconds} s per video (the "Extraction" section's
assumption of a sustained 50 TFLOP/s; no GPU was measured here) while decoding, VGGish and the
pipeline ({cpu_part:.2f} s per video on one core) run on 8 vCPUs in parallel; the slower of the
two sets the pace ({gpu_per_video:.2f} s per video). 16 machines: each its own Beam worker
(Dataflow, Flink or Spark), start-up ignored.
"""
    print(body)
    write_section("Build from the videos (benchmarks/beam_benchmark.py)", body)
    return 0


if __name__ == "__main__":
    app.run(main)
