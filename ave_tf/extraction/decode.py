"""Decodes the 10 s span of a video file that AVE features describe, with PyAV (FFmpeg).

``read_clip(path, start_seconds)`` returns every video frame whose timestamp falls in
``[start, start + 10)`` as RGB, resized to 224x224 as it is decoded (bilinear with half-pixel
centres and no antialiasing, what ``cv2.resize(..., INTER_LINEAR)`` computes), and the audio
samples of the same span as float32 in [-1, 1] at the file's own rate. Any container and codec
FFmpeg reads works; a variable frame rate is handled by counting the decoded frames, as the
recipe does. Memory stays bounded: only resized frames of the span are kept.

Every problem with the file is a `ClipError` naming it: no such file, a directory, not a video,
no video stream, no audio stream (unless ``silent_audio``), shorter than the span, or truncated /
corrupt mid-stream. ``check_video_file(path)`` makes the checks that need no decoding, for the
programs that list videos before extracting any (``ave_tf.extract``, the ``clips`` TFDS config).
"""

import dataclasses
import os
import pathlib

import numpy as np

from ave_tf.errors import UsageError

SPAN_SECONDS = 10.0
FRAME_SIZE = 224
# A 10 s clip whose container rounds its end (e.g. 9.98 s of video) is still a 10 s clip; a
# span shorter than this much is an error. VGGish needs 9.975 s of audio (ave_tf.extraction.audio).
SHORTFALL_TOLERANCE_SECONDS = 0.1
# Sample rate of the silence that `silent_audio` substitutes for a missing audio stream.
SILENCE_SAMPLE_RATE = 16000
NO_SUCH_FILE = "no such file"


class ClipError(UsageError):
    """A video file that cannot give AVE features; the message names the file and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Clip:
    """The decoded 10 s span of a video file.

    Attributes:
        frames: uint8 (frames, 224, 224, 3) RGB, every decoded frame of the span in order.
        waveform: float32 (samples, channels) in [-1, 1], the audio of the span (zeros of
            one channel at 16 kHz when the file has no audio and ``silent_audio`` was given).
        sample_rate: samples per second of ``waveform``.
        duration: seconds the whole file lasts (the container's duration, else the decoded end).
    """

    frames: np.ndarray
    waveform: np.ndarray
    sample_rate: int
    duration: float


def video_file_problem(path) -> str | None:
    """Why ``path`` cannot be a video file without opening it, or None when it is a file.

    Args:
        path: a ``pathlib.Path`` or an ``etils.epath.Path`` (``gs://``-style paths too).

    Returns:
        `NO_SUCH_FILE`, "is a directory, not a video file", "is not a regular file", or None.
    """
    if path.is_file():
        return None
    if path.is_dir():
        return "is a directory, not a video file"
    if path.exists():
        return "is not a regular file"
    return NO_SUCH_FILE


def check_video_file(path: str | os.PathLike, flag: str | None = None) -> pathlib.Path:
    """``path`` as a ``pathlib.Path``, once it names a file (not opened: see `read_clip`).

    Args:
        path: the video file.
        flag: the command-line flag that gave ``path`` (e.g. "video"), named in the error.

    Raises:
        ClipError: naming ``path`` (after ``--flag``) and what it is instead (see
            `video_file_problem`), e.g. "--video clips: is a directory, not a video file".
    """
    path = pathlib.Path(path)
    problem = video_file_problem(path)
    if problem is not None:
        raise ClipError(path if flag is None else f"--{flag} {path}", problem)
    return path


def resize_frame(frame: np.ndarray) -> np.ndarray:
    """uint8 (height, width, 3) -> uint8 (224, 224, 3), bilinear like cv2 INTER_LINEAR."""
    import tensorflow as tf  # TensorFlow: only to resize frames

    resized = tf.image.resize(frame, (FRAME_SIZE, FRAME_SIZE), "bilinear", antialias=False)
    return np.clip(np.floor(resized.numpy() + 0.5), 0, 255).astype(np.uint8)


def read_clip(
    path: str | os.PathLike, start_seconds: float = 0.0, silent_audio: bool = False
) -> Clip:
    """Decodes the frames and audio of ``[start_seconds, start_seconds + 10)`` of a video file.

    Args:
        path: a video file in any container/codec FFmpeg reads.
        start_seconds: where the 10 s span starts (for clips longer than 10 s).
        silent_audio: a file without an audio stream gets 10 s of silence instead of an error
            (a file with audio always uses its audio).

    Returns:
        The `Clip` of the span.

    Raises:
        ClipError: naming ``path`` and the reason (see the module docstring).
    """
    import av  # PyAV: only when a video is opened

    if start_seconds < 0:
        raise UsageError(f"start_seconds must be >= 0; got {start_seconds}")
    end_seconds = start_seconds + SPAN_SECONDS
    container, video, audio = _open_video(path, silent_audio)
    path = pathlib.Path(path)
    with container:
        video.thread_type = "AUTO"
        declared = _declared_duration(container, video)
        span = _SpanDecoder(start_seconds, end_seconds, video, audio)
        try:
            if start_seconds > 0:
                container.seek(int(start_seconds * av.time_base), backward=True)
            streams = [stream for stream in (video, audio) if stream is not None]
            for packet in container.demux(*streams):
                span.add(packet)
                if span.done():
                    break
        except av.FFmpegError as error:
            raise ClipError(
                path, f"truncated or corrupt near {span.video_end:.2f} s ({_reason(error)})"
            ) from None
    duration = declared if declared is not None else span.video_end
    decoded_end = span.video_end
    if declared is not None and decoded_end < min(declared, end_seconds) - 1.0:
        raise ClipError(
            path,
            f"decoding stopped at {decoded_end:.2f} s of the declared {declared:.2f} s: "
            "the file is truncated or corrupt",
        )
    needed = end_seconds - SHORTFALL_TOLERANCE_SECONDS
    span_text = f"AVE features need the 10 s from {start_seconds:g} s to {end_seconds:g} s"
    if decoded_end < needed:
        raise ClipError(path, f"lasts {decoded_end:.2f} s (duration {duration:.2f} s); {span_text}")
    if audio is not None and span.audio_end < needed:
        raise ClipError(path, f"its audio ends at {span.audio_end:.2f} s; {span_text}")
    if audio is None:
        waveform = np.zeros((int(SPAN_SECONDS * SILENCE_SAMPLE_RATE), 1), np.float32)
        sample_rate = SILENCE_SAMPLE_RATE
    else:
        waveform, sample_rate = span.waveform(), audio.rate
    return Clip(np.stack(span.frames), waveform, sample_rate, float(duration))


class _SpanDecoder:
    """Decodes packets, keeping the resized frames and the audio samples of [start, end)."""

    def __init__(self, start: float, end: float, video, audio):
        import av  # PyAV: only when a video is opened

        self.start, self.end = start, end
        self.video, self.audio = video, audio
        self.frames: list[np.ndarray] = []
        self.video_end = 0.0  # end time of the last decoded frame
        self.audio_end = 0.0
        self._chunks: list[np.ndarray] = []  # (channels, samples) float32 pieces of the span
        self._resampler = av.AudioResampler(format="fltp") if audio is not None else None
        rate = video.average_rate or video.guessed_rate
        self._frame_seconds = float(1 / rate) if rate else 0.0
        self._video_frames = 0

    def add(self, packet) -> None:
        for frame in packet.decode():
            if packet.stream is self.video:
                self._add_video(frame)
            else:
                for converted in self._resampler.resample(frame):
                    self._add_audio(converted)

    def done(self) -> bool:
        audio_done = self.audio is None or self.audio_end >= self.end
        return self.video_end >= self.end + self._frame_seconds and audio_done

    def _add_video(self, frame) -> None:
        time = frame.time
        if time is None:  # no timestamp: count frames at the nominal rate
            time = self._video_frames * self._frame_seconds
        self._video_frames += 1
        frame_seconds = float(frame.duration * frame.time_base) if frame.duration else 0.0
        self.video_end = max(self.video_end, time + (frame_seconds or self._frame_seconds))
        if self.start <= time < self.end:
            self.frames.append(resize_frame(frame.to_ndarray(format="rgb24")))

    def _add_audio(self, frame) -> None:
        samples = frame.to_ndarray()  # fltp: (channels, samples)
        time = frame.time if frame.time is not None else self.audio_end
        rate = frame.sample_rate
        self.audio_end = max(self.audio_end, time + samples.shape[1] / rate)
        first = max(0, int(round((self.start - time) * rate)))
        last = min(samples.shape[1], int(round((self.end - time) * rate)))
        if first < last:
            self._chunks.append(samples[:, first:last])

    def waveform(self) -> np.ndarray:
        """float32 (samples, channels) of the span, at most 10 s."""
        samples = np.concatenate(self._chunks, axis=1) if self._chunks else np.zeros((1, 0))
        return np.ascontiguousarray(
            samples[:, : int(SPAN_SECONDS * self.audio.rate)].T, dtype=np.float32
        )


def check_video(
    path: str | os.PathLike, silent_audio: bool = False, flag: str | None = None
) -> None:
    """Checks, without decoding, that ``path`` is a video file `read_clip` can open: a file,
    a container FFmpeg reads, a video stream, an audio stream unless ``silent_audio``.

    Args:
        path: the video file.
        silent_audio: as for `read_clip`.
        flag: the command-line flag that gave ``path`` (e.g. "video"), named in the error.

    Raises:
        ClipError: naming ``path`` and what is wrong (as `read_clip` would).
    """
    container, _, _ = _open_video(path, silent_audio, flag)
    container.close()


def _open_video(path: str | os.PathLike, silent_audio: bool, flag: str | None = None):
    """``(container, video stream, audio stream or None)`` of the video file ``path``."""
    import av  # PyAV: only when a video is opened

    path = check_video_file(path, flag)
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise ClipError(path, f"not a readable video file ({_reason(error)})") from None
    if not container.streams.video:
        container.close()
        raise ClipError(path, "has no video stream")
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    if audio is None and not silent_audio:
        container.close()
        raise ClipError(path, "has no audio stream (pass --silent_audio to use silence instead)")
    return container, video, audio


def _declared_duration(container, video) -> float | None:
    """Seconds the container (else the video stream) says the file lasts, if it says."""
    if container.duration:
        return container.duration / 1_000_000
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    return None


def _reason(error) -> str:
    """FFmpeg's words for an error, without the file name PyAV appends."""
    return getattr(error, "strerror", None) or str(error)
