"""Feature extraction speed: decoding, VGGish and VGG19 separately, against the matmul roofline.

Run::

    python -m benchmarks.extraction_benchmark [--repeats 3] [--width 480 --height 360]

Writes a 10 s H.264 + AAC clip (25 fps, 44.1 kHz stereo, ``--width`` x ``--height``) to a
temporary folder and times, per video (median of the repeats): decoding the 10 s span
(`decode.read_clip`), the VGGish half (`audio.audio_features`: resampling, log-mel, 10
examples) and VGG19 (preprocessing and block5_pool, batch sizes 16/32/64: one batch timed after
one traced, scaled to the 160 distinct frames of a 25 fps video).
Random weights (speed does not depend on their values). Prints, and writes to BENCHMARKS.md
("Extraction" section): seconds per video, videos/s, peak RSS after each stage, VGG19 GFLOP
per video from the layer shapes and the fraction of the measured dense-matmul rate it reaches.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import fractions  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import keras  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks.benchmarks_md import machine, write_section  # noqa: E402
from benchmarks.model_benchmark import matmul_gflops, median_seconds  # noqa: E402  (defines --repeats)

flags.DEFINE_integer("width", 480, "Frame width of the benchmark clip (YouTube 360p: 480).")
flags.DEFINE_integer("height", 360, "Frame height of the benchmark clip.")
flags.DEFINE_integer("vgg19_repeats", 1, "Timed VGG19 batches per batch size.")
FLAGS = flags.FLAGS

BATCH_SIZES = (16, 32, 64)


def vgg19_gflop_per_frame(model) -> float:
    """Multiply-adds x 2 of VGG19's convolutions up to block5_pool for one 224x224 frame."""
    flops, size = 0, 224
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
            flops += 2 * size * size * kernel_h * kernel_w * channels_in * channels_out
        elif isinstance(layer, keras.layers.MaxPooling2D):
            size //= 2
    return flops / 1e9


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main(argv):
    del argv
    from ave_tf.extraction import audio, decode, vgg19, vggish
    from ave_tf.testing.clips import ClipSpec, write_clip

    load_before = os.getloadavg()[0]
    rate_before = matmul_gflops(FLAGS.repeats)
    print(f"machine: {machine()}")
    print(f"dense matmul rate: {rate_before:.1f} GFLOP/s (float32, {FLAGS.repeats} runs, median)")
    rows = []

    def row(stage, seconds, note=""):
        rows.append(
            f"| {stage} | {seconds:.2f} | {1 / seconds:.3f} | {_peak_rss_gib():.2f} | {note} |"
        )
        print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as folder:
        spec = ClipSpec(10, fractions.Fraction(25), 2, FLAGS.width, FLAGS.height)
        path = write_clip(os.path.join(folder, "clip.mp4"), spec)
        clip = decode.read_clip(path)  # warm-up (imports, first TF op)
        row(
            "decode + resize (PyAV, 250 frames)",
            median_seconds(lambda: decode.read_clip(path), FLAGS.repeats),
            f"{FLAGS.width}x{FLAGS.height} H.264 + AAC",
        )
    audio_model = vggish.vggish_model()
    audio.audio_features(clip.waveform, clip.sample_rate, audio_model)
    row(
        "VGGish (resampy, log-mel, 10 examples)",
        median_seconds(
            lambda: audio.audio_features(clip.waveform, clip.sample_rate, audio_model),
            FLAGS.repeats,
        ),
    )
    visual_model = vgg19.vgg19_pool5_model(None)
    batches = {}
    frames_per_video = len(set(vgg19.sample_frame_indices(len(clip.frames)).ravel()))
    gflop = vgg19_gflop_per_frame(visual_model) * frames_per_video
    vgg19_rates = {}
    for batch_size in BATCH_SIZES:
        # One batch traced, one timed: 160 frames per batch size would take most of an hour
        # on this shared machine; a video's time is the per-frame time x its distinct frames.
        batch = clip.frames[:batch_size]
        visual_model.predict_on_batch(vgg19.preprocess_frames(batch))
        seconds = median_seconds(
            lambda b=batch: visual_model.predict_on_batch(vgg19.preprocess_frames(b)),
            FLAGS.vgg19_repeats,
        )
        batches[batch_size] = seconds * frames_per_video / batch_size
    # The machine is shared: the matmul rate is measured before and after VGG19 and the
    # higher one is the roofline.
    rate = max(rate_before, matmul_gflops(FLAGS.repeats))
    load_after = os.getloadavg()[0]
    for batch_size, seconds in batches.items():
        vgg19_rates[batch_size] = gflop / seconds
        row(
            f"VGG19 to block5_pool, batch {batch_size}",
            seconds,
            f"{gflop / seconds:.0f} GFLOP/s = {gflop / seconds / rate:.0%} of the roofline",
        )
    best = max(vgg19_rates.values())
    ave_videos = 4143
    body = "\n".join(
        [
            f"Command: `python -m benchmarks.extraction_benchmark --repeats {FLAGS.repeats} "
            f"--vgg19_repeats {FLAGS.vgg19_repeats} --width {FLAGS.width} "
            f"--height {FLAGS.height}`  ",
            f"Machine: {machine()}; 1-minute load average {load_before:.1f} before, "
            f"{load_after:.1f} after, on {os.cpu_count()} cores (a load above the core count "
            "means other jobs shared the cores: the figures are then lower bounds).  ",
            f"Dense-matmul rate (float32, the AVGA projection's shape, the higher of before/after "
            f"VGG19): **{rate:.1f} GFLOP/s**. VGG19 to "
            f"block5_pool: {vgg19_gflop_per_frame(visual_model):.1f} GFLOP per 224x224 frame "
            f"({vgg19_gflop_per_frame(visual_model) / 2:.1f} G multiply-adds, the '19.6 GFLOPs' "
            f"usually quoted) x {frames_per_video} sampled frames = **{gflop:.0f} GFLOP per "
            "video**. A fraction above 100 % means VGG19's large convolutions run faster than "
            "that small matmul (or, on a shared machine, that the matmul was measured while other "
            "jobs took more of the cores): the matmul is a rough yardstick, not this CPU's peak.",
            "",
            "Per 10 s video (median of the repeats; VGG19: one timed batch scaled to "
            f"{frames_per_video} frames), random weights, peak RSS of the process after the "
            "stage:",
            "",
            "| stage | s / video | videos / s | peak RSS (GiB) | note |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"VGG19 dominates: at the best measured {best:.0f} GFLOP/s the {ave_videos} AVE "
            f"videos need {ave_videos * gflop / best / 3600:.1f} h of VGG19 here. A GPU at a "
            f"sustained 50 TFLOP/s (TF32/bf16 convolutions) would need "
            f"{gflop / 50e3:.3f} s per video ({ave_videos * gflop / 50e3 / 60:.0f} min for "
            "AVE); decoding (CPU, parallel across videos) and VGGish then set the pace.",
        ]
    )
    write_section("Extraction (benchmarks/extraction_benchmark.py)", body)
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
