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

``--parts=video`` instead times the video-in SavedModel (``ave_tf.export_video``: the real
VGGish and VGG19 architectures and a PSP model, random weights) on the same clip, one video per
call: its ``serving_default`` on the JPEG frames and PCM that ``predict --video`` sends (median
of ``--video_repeats`` calls after one warm-up), and its FLOPs per video from the layer shapes;
written to the "Video-in model" section.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import fractions  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from ave_tf import export, export_video, predictors  # noqa: E402
from ave_tf.extraction import audio, clip_encoding, decode, vgg19, vggish  # noqa: E402
from ave_tf.models import fully_supervised_model  # noqa: E402
from ave_tf.testing.clips import ClipSpec, write_clip  # noqa: E402
from benchmarks.benchmarks_md import machine, write_section  # noqa: E402
from benchmarks.model_benchmark import (  # noqa: E402  (defines --repeats)
    forward_flops_per_video,
    matmul_gflops,
    median_seconds,
)

flags.DEFINE_integer("width", 480, "Frame width of the benchmark clip (YouTube 360p: 480).")
flags.DEFINE_integer("height", 360, "Frame height of the benchmark clip.")
flags.DEFINE_integer("vgg19_repeats", 1, "Timed VGG19 batches per batch size.")
flags.DEFINE_enum("parts", "extraction", ["extraction", "video"], "What to measure.")
flags.DEFINE_integer("video_repeats", 1, "Timed calls of the video-in model.", lower_bound=1)
flags.DEFINE_bool(
    "video_warmup", True, "Call the video-in model once before timing (else the first is timed)."
)
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


def model_gflop(model) -> float:
    """Multiply-adds x 2 of a functional model's convolutions and dense layers for one example
    (from the layers' output shapes, which must be known: VGGish; pooling, activations and
    the like not counted)."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
            height, width = layer.output.shape[1:3]
            flops += 2 * height * width * kernel_h * kernel_w * channels_in * channels_out
        elif isinstance(layer, keras.layers.Dense):
            positions = math.prod(layer.output.shape[1:-1])
            flops += 2 * positions * layer.kernel.shape[0] * layer.kernel.shape[1]
    return flops / 1e9


def video_model(folder: str, clip) -> None:
    """Exports, loads and times the video-in model; writes its section."""
    load_before = os.getloadavg()[0]
    audio_model, visual_model = vggish.vggish_model(), vgg19.vgg19_pool5_model(None)
    psp = fully_supervised_model()
    path = export_video.export_video_model(
        (export.serving_function(psp), psp),
        audio_model,
        visual_model,
        os.path.join(folder, "saved_models"),
    )
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    loaded = predictors.load_saved_model(path)
    signature = predictors.serving_signature(loaded, path, (predictors.VIDEO_SIGNATURE_INPUTS,))
    inputs = clip_encoding.clip_inputs([clip])
    request_mib = sum(len(b) for b in inputs["frames"].ravel()) / 2**20
    frames_per_video = clip_encoding.FRAMES_PER_VIDEO
    vgg19_gflop = vgg19_gflop_per_frame(visual_model) * frames_per_video
    vggish_gflop = model_gflop(audio_model) * 10
    psp_gflop = forward_flops_per_video("fully") / 1e9
    total = vgg19_gflop + vggish_gflop + psp_gflop
    print(f"video-in model: {total:.0f} GFLOP per video", flush=True)
    frames, waveform = tf.constant(inputs["frames"]), tf.constant(inputs["waveform"])
    if FLAGS.video_warmup:
        signature(frames=frames, waveform=waveform)
    cpu_before = time.process_time()
    seconds = median_seconds(
        lambda: signature(frames=frames, waveform=waveform), FLAGS.video_repeats
    )
    cpu_seconds = (time.process_time() - cpu_before) / FLAGS.video_repeats
    load_after = os.getloadavg()[0]
    timed = (
        f"median of {FLAGS.video_repeats} calls after one warm-up"
        if FLAGS.video_warmup
        else f"{FLAGS.video_repeats} call(s), the first one timed (no warm-up)"
    )
    print(f"video-in model: {seconds:.1f} s per video ({cpu_seconds:.0f} CPU s)", flush=True)
    body = "\n".join(
        [
            f"Command: `python -m benchmarks.extraction_benchmark --parts=video "
            f"--video_repeats {FLAGS.video_repeats} --video_warmup={FLAGS.video_warmup} "
            f"--width {FLAGS.width} "
            f"--height {FLAGS.height}`  ",
            f"Machine: {machine()}; 1-minute load average {load_before:.1f} before, "
            f"{load_after:.1f} after, on {os.cpu_count()} cores (a load above the core count "
            "means other jobs shared the cores: the time is then an upper bound).  ",
            "The exported `psp_video` SavedModel (real VGGish and VGG19 architectures, a "
            "PSP model, random weights; "
            f"{size:.0f} MiB on disk), one 10 s video per call, in-process (`serving_default` "
            f"on the {frames_per_video} JPEG frames (quality 95, {request_mib:.1f} MiB) and "
            f"320,000 bytes of PCM that `predict --video` sends; {timed}):",
            "",
            "| | per video |",
            "|---|---|",
            f"| wall seconds on this CPU | **{seconds:.1f} s** ({1 / seconds:.3f} videos/s) |",
            f"| CPU seconds (all threads of the process) | {cpu_seconds:.0f} s: about "
            f"{cpu_seconds / os.cpu_count():.0f} s of wall time on {os.cpu_count()} idle cores |",
            f"| peak RSS of the process | {_peak_rss_gib():.2f} GiB |",
            f"| VGG19 to block5_pool, {frames_per_video} frames | {vgg19_gflop:,.0f} GFLOP |",
            f"| VGGish, 10 examples | {vggish_gflop:.1f} GFLOP |",
            f"| PSP, fully supervised (the model benchmark's count) | {psp_gflop:.2f} GFLOP |",
            f"| total (convolutions and dense layers) | **{total:,.0f} GFLOP** |",
            "",
            f"That is {total / seconds:.0f} GFLOP/s of wall time, "
            f"{total / cpu_seconds:.0f} GFLOP per CPU second. VGG19 is "
            f"{vgg19_gflop / total:.1%} of the work. The graph runs all {frames_per_video} "
            "sampled frames through VGG19 (the extractor runs each distinct frame once: the "
            "same 160 frames for a clip of 160 or more frames), one second (16 frames) per "
            "VGG19 call to bound memory.",
        ]
    )
    write_section("Video-in model (benchmarks/extraction_benchmark.py --parts=video)", body)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main(argv):
    del argv
    if FLAGS.parts == "video":
        with tempfile.TemporaryDirectory() as folder:
            spec = ClipSpec(10, fractions.Fraction(25), 2, FLAGS.width, FLAGS.height)
            clip = decode.read_clip(write_clip(os.path.join(folder, "clip.mp4"), spec))
            video_model(folder, clip)
        return 0
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
