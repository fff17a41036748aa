"""A decoded clip as the video-in model's inputs: its 160 sampled frames as images, its audio as
16 kHz int16 PCM (the client side of ``ave_tf.export_video``; `graph` is the server side).

    inputs = clip_inputs([decode.read_clip("clip.mp4")])
    # {"frames": object (1, 160) JPEG bytes, "waveform": object (1,) 320000 bytes}

- ``frames``: the recipe's 16 frames of each second (`vgg19.sample_frame_indices` of the span's
  decoded frames, second by second, repeats included), each encoded as JPEG (quality
  ``DEFAULT_JPEG_QUALITY``, no chroma subsampling) or, losslessly, PNG. `decode.read_clip`
  already resized them to 224x224; the model resizes again (a no-op at 224x224), so frames of
  any size are accepted.
- ``waveform``: the recipe's 10 seconds at 16 kHz (`audio.seconds_16k`: each second averaged to
  mono and resampled on its own), second i at samples [16000 i, 16000 (i + 1)), a short last
  second padded with zeros (the model reads only the first 15600 samples of each second), as
  little-endian int16 = round(value x 32768), clipped: 320,000 bytes per video.

Only the JPEG rounding and the int16 rounding separate the model's features from
`extractor.FeatureExtractor`'s; docs/serving.md "Video in" states how much they change the outputs.
"""

import numpy as np

from ave_tf.ave import NUM_SEGMENTS
from ave_tf.extraction.log_mel import SAMPLE_RATE
from ave_tf.extraction.vgg19 import FRAMES_PER_SEGMENT, sample_frame_indices

FRAMES_PER_VIDEO = NUM_SEGMENTS * FRAMES_PER_SEGMENT
"""160 sampled frames per video: 16 for each of the 10 seconds, in order."""
PCM_SAMPLES = NUM_SEGMENTS * SAMPLE_RATE
"""160,000 16 kHz samples per video: 10 seconds."""
PCM_BYTES = 2 * PCM_SAMPLES
"""320,000 bytes of little-endian int16 per video."""
PCM_SCALE = 32768.0
"""int16 value = float value x 32768 (the official VGGish reads WAV files as int16 / 32768)."""
IMAGE_FORMATS = ("jpeg", "png")
DEFAULT_JPEG_QUALITY = 95


def sampled_frames(frames: np.ndarray) -> np.ndarray:
    """The recipe's 160 frames of a span: uint8 (160, height, width, 3), second by second.

    Args:
        frames: uint8 (total_frames, height, width, 3), every decoded frame of the 10 s span.
    """
    return frames[sample_frame_indices(len(frames)).reshape(-1)]


def encode_frames(
    frames: np.ndarray, image_format: str = "jpeg", quality: int = DEFAULT_JPEG_QUALITY
) -> np.ndarray:
    """uint8 RGB (n, height, width, 3) -> object (n,) of encoded image bytes.

    Args:
        frames: the images.
        image_format: ``"jpeg"`` (lossy, small) or ``"png"`` (lossless, larger).
        quality: JPEG quality, 1..100 (4:4:4: no chroma subsampling).
    """
    import tensorflow as tf  # TensorFlow: only to encode frames

    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}; got {image_format!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100; got {quality}")
    encoded = np.empty(len(frames), dtype=object)
    for i, frame in enumerate(frames):
        if image_format == "png":
            encoded[i] = tf.io.encode_png(frame).numpy()
        else:
            encoded[i] = tf.io.encode_jpeg(
                frame, quality=quality, chroma_downsampling=False
            ).numpy()
    return encoded


def encode_waveform(waveform: np.ndarray, sample_rate: int) -> bytes:
    """A span's audio as the model's ``waveform``: 320,000 bytes of 16 kHz int16 LE PCM.

    Args:
        waveform: (samples,) or (samples, channels) float in [-1, 1], the 10 s span.
        sample_rate: its rate, Hz.

    Raises:
        UsageError: less than the 9.975 s of audio the recipe needs (`audio.seconds_16k`).
    """
    from ave_tf.extraction.audio import seconds_16k  # (imports TensorFlow)

    pcm = np.zeros((NUM_SEGMENTS, SAMPLE_RATE), np.float64)
    for i, second in enumerate(seconds_16k(waveform, sample_rate)):
        pcm[i, : len(second)] = second
    quantised = np.clip(np.round(pcm.reshape(-1) * PCM_SCALE), -32768, 32767)
    return quantised.astype("<i2").tobytes()


def clip_inputs(
    clips, image_format: str = "jpeg", quality: int = DEFAULT_JPEG_QUALITY
) -> dict[str, np.ndarray]:
    """The video-in model's inputs for decoded clips (`decode.Clip`, one per video).

    Returns:
        ``frames`` object (videos, 160) of image bytes and ``waveform`` object (videos,) of
        PCM bytes.

    Raises:
        UsageError: a clip with too little audio (`encode_waveform`).
    """
    frames = np.stack(
        [encode_frames(sampled_frames(clip.frames), image_format, quality) for clip in clips]
    )
    waveform = np.empty(len(clips), dtype=object)
    for i, clip in enumerate(clips):
        waveform[i] = encode_waveform(clip.waveform, clip.sample_rate)
    return {"frames": frames, "waveform": waveform}
