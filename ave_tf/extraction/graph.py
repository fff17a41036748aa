"""The AVE features of encoded clips in TensorFlow ops: the server side of the video-in model.

    audio, visual = clip_features(frames, waveform, vggish, vgg19)
    # frames: string (B, 160) JPEG/PNG; waveform: string (B,) 16 kHz int16 LE PCM
    # audio (B, 10, 128), visual (B, 10, 7, 7, 512) float32

Runs inside a SavedModel signature (``ave_tf.export_video``), the same steps as
`extractor.FeatureExtractor` after decoding (`clip_encoding` describes the inputs):

- visual: each image decoded (JPEG or PNG) to RGB, resized to 224x224 as `decode.resize_frame`
  does (bilinear, half-pixel centres, no antialias, rounded to integers 0..255), Keras'
  ``vgg19.preprocess_input``, VGG19 ``block5_pool``; the 16 frames of a second averaged. One
  second (16 frames) goes through VGG19 at a time, so memory stays that of a 16-frame batch.
- audio: the PCM as int16 / 32768; second i's first 15600 samples (samples [16000 i,
  16000 i + 15600)) make its one 96x64 log-mel example (`log_mel.log_mel_examples`), VGGish
  gives its embedding.

Bad inputs stop the graph with an ``InvalidArgumentError`` whose message names the input
(what TF Serving answers with HTTP 400): a ``waveform`` of another length than 320,000 bytes, a
``frames`` value that is not a JPEG or PNG image; a corrupt image fails in its decoder.
"""

import keras
import tensorflow as tf

from ave_tf.ave import NUM_SEGMENTS
from ave_tf.extraction.audio import EXAMPLE_SAMPLES
from ave_tf.extraction.clip_encoding import FRAMES_PER_VIDEO, PCM_BYTES, PCM_SCALE
from ave_tf.extraction.decode import FRAME_SIZE
from ave_tf.extraction.log_mel import EXAMPLE_FRAMES, MEL_BANDS, SAMPLE_RATE, log_mel_examples
from ave_tf.extraction.vgg19 import FEATURE_SHAPE, FRAMES_PER_SEGMENT

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_images(frames: tf.Tensor) -> tf.Operation:
    """An assertion that every ``frames`` value starts like a JPEG or PNG file."""
    is_image = tf.logical_or(
        tf.equal(tf.strings.substr(frames, 0, len(_JPEG_MAGIC)), _JPEG_MAGIC),
        tf.equal(tf.strings.substr(frames, 0, len(_PNG_MAGIC)), _PNG_MAGIC),
    )
    return tf.debugging.Assert(
        tf.reduce_all(is_image),
        [
            "frames: every value must be a JPEG or PNG image; these (video, frame) are not:",
            tf.where(tf.logical_not(is_image)),
        ],
        summarize=10,
        name="check_frames",
    )


def decode_frame(image: tf.Tensor) -> tf.Tensor:
    """One JPEG/PNG image (scalar string) -> float32 (224, 224, 3) RGB, integer values 0..255,
    resized as `decode.resize_frame` resizes decoded video frames."""
    pixels = tf.io.decode_image(image, channels=3, expand_animations=False)
    resized = tf.image.resize(pixels, (FRAME_SIZE, FRAME_SIZE), "bilinear", antialias=False)
    return tf.clip_by_value(tf.floor(resized + 0.5), 0.0, 255.0)


def visual_features(frames: tf.Tensor, model: keras.Model) -> tf.Tensor:
    """string (B, 160) images -> float32 (B, 10, 7, 7, 512): per second, the mean of VGG19
    ``block5_pool`` over its 16 frames."""
    with tf.control_dependencies([check_images(frames)]):
        seconds = tf.reshape(frames, (-1, FRAMES_PER_SEGMENT))  # (B * 10, 16)

    def second_features(images):
        pixels = tf.map_fn(
            decode_frame, images, fn_output_signature=tf.float32, name="decode_frames"
        )
        pooled = model(keras.applications.vgg19.preprocess_input(pixels), training=False)
        return tf.reduce_mean(tf.cast(pooled, tf.float32), axis=0)

    per_second = tf.map_fn(
        second_features,
        seconds,
        fn_output_signature=tf.TensorSpec(FEATURE_SHAPE, tf.float32),
        parallel_iterations=1,  # one 16-frame VGG19 batch in memory at a time
    )
    return tf.reshape(per_second, (-1, NUM_SEGMENTS, *FEATURE_SHAPE))


def audio_examples(waveform: tf.Tensor) -> tf.Tensor:
    """string (B,) 16 kHz int16 LE PCM of 320,000 bytes -> float32 (B, 10, 96, 64) examples."""
    lengths = tf.strings.length(waveform)
    check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(lengths, PCM_BYTES)),
        [
            f"waveform: every value must hold {PCM_BYTES} bytes (10 s of 16 kHz mono int16 "
            "little-endian PCM); got lengths:",
            lengths,
        ],
        summarize=10,
        name="check_waveform",
    )
    with tf.control_dependencies([check]):
        samples = tf.io.decode_raw(waveform, tf.int16, little_endian=True)
    seconds = tf.reshape(tf.cast(samples, tf.float64) / PCM_SCALE, (-1, NUM_SEGMENTS, SAMPLE_RATE))
    examples = log_mel_examples(seconds[..., :EXAMPLE_SAMPLES])  # (B, 10, 1, 96, 64)
    return tf.reshape(examples, (-1, NUM_SEGMENTS, EXAMPLE_FRAMES, MEL_BANDS))


def audio_features(waveform: tf.Tensor, model: keras.Model) -> tf.Tensor:
    """string (B,) PCM -> float32 (B, 10, 128): one VGGish embedding per second."""
    examples = audio_examples(waveform)
    embeddings = model(tf.reshape(examples, (-1, EXAMPLE_FRAMES, MEL_BANDS)), training=False)
    return tf.reshape(tf.cast(embeddings, tf.float32), (-1, NUM_SEGMENTS, embeddings.shape[-1]))


def clip_features(
    frames: tf.Tensor, waveform: tf.Tensor, audio_model: keras.Model, visual_model: keras.Model
) -> tuple[tf.Tensor, tf.Tensor]:
    """The AVE features of encoded clips (see the module docstring).

    Args:
        frames: string (B, 160), the sampled frames as JPEG or PNG bytes.
        waveform: string (B,), 320,000 bytes of 16 kHz mono int16 little-endian PCM each.
        audio_model: VGGish, (n, 96, 64) -> (n, 128).
        visual_model: VGG19 to ``block5_pool``, (n, 224, 224, 3) -> (n, 7, 7, 512).

    Returns:
        audio float32 (B, 10, 128) and visual float32 (B, 10, 7, 7, 512).
    """
    frames = tf.ensure_shape(frames, (None, FRAMES_PER_VIDEO))
    return audio_features(waveform, audio_model), visual_features(frames, visual_model)
