"""`FeatureExtractor`: one video file in, its AVE features out (audio and visual).

    extractor = FeatureExtractor.from_files("vggish_model.ckpt", "vgg19_..._notop.h5")
    audio, visual = extractor.extract("clip.mp4")  # (10, 128), (10, 7, 7, 512) float32

The one function the ``ave_tf.extract`` program, ``ave_tf.predict --video`` and batch jobs
call; both models are loaded once and reused for every video.
"""

import os

import numpy as np

from ave_tf.errors import UsageError
from ave_tf.extraction import decode, vgg19


class FeatureExtractor:
    """Extracts AVE features from video files with loaded VGGish and VGG19 models.

    Args:
        audio_model: VGGish, (batch, 96, 64) -> (batch, 128) (`vggish.vggish_from_checkpoint`).
        visual_model: VGG19 to ``block5_pool``, (batch, 224, 224, 3) -> (batch, 7, 7, 512)
            (`vgg19.vgg19_pool5_model`).
        batch_size: frames per VGG19 call (default 32).
    """

    def __init__(self, audio_model, visual_model, batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.audio_model = audio_model
        self.visual_model = visual_model
        self.batch_size = batch_size

    @classmethod
    def from_files(
        cls,
        vggish_checkpoint: str | os.PathLike,
        vgg19_weights: str | os.PathLike,
        batch_size: int = 32,
    ) -> "FeatureExtractor":
        """Loads the official ``vggish_model.ckpt`` and a Keras VGG19 weights file (or
        ``"imagenet"``); a bad file raises a `UsageError` naming it."""
        from ave_tf.extraction import vggish  # (imports TensorFlow, Keras)

        audio_model = vggish.vggish_from_checkpoint(vggish_checkpoint)
        return cls(audio_model, vgg19.vgg19_pool5_model(vgg19_weights), batch_size)

    def extract(
        self, path: str | os.PathLike, start_seconds: float = 0.0, silent_audio: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features of ``[start_seconds, start_seconds + 10)`` of a video file.

        Args:
            path: a video file FFmpeg reads.
            start_seconds: start of the 10 s span.
            silent_audio: a file without audio gets the features of silence instead of an
                error.

        Returns:
            audio float32 (10, 128) and visual float32 (10, 7, 7, 512).

        Raises:
            decode.ClipError: naming ``path``: not a video, no video or audio stream, too
                short, truncated or corrupt.
        """
        from ave_tf.extraction import audio  # (imports TensorFlow)

        clip = decode.read_clip(path, start_seconds, silent_audio)
        try:
            audio_features = audio.audio_features(clip.waveform, clip.sample_rate, self.audio_model)
        except UsageError as error:
            raise decode.ClipError(path, str(error)) from None
        visual_features = vgg19.visual_features(clip.frames, self.visual_model, self.batch_size)
        return audio_features, visual_features
