"""Writes small video files with PyAV for the extraction tests (tiny frames, known content).

Each second ``s`` of a clip is one flat grey level, ``second_level(s)``, so a test can tell
which seconds a decoded span holds; the audio is a sine per channel (amplitude 0.5).
"""

import dataclasses
import fractions
import pathlib

import numpy as np

AUDIO_RATE = 44100


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """What `write_clip` encodes.

    Attributes:
        seconds: length of the clip.
        fps: frame rate (a `fractions.Fraction` for NTSC rates such as 30000/1001).
        channels: audio channels (0: no audio stream).
        width, height: frame size in pixels (even: H.264 needs it).
        audio_seconds: length of the audio when it differs from ``seconds``.
    """

    seconds: float = 10.0
    fps: fractions.Fraction = fractions.Fraction(25)
    channels: int = 1
    width: int = 64
    height: int = 48
    audio_seconds: float | None = None


def video_codec() -> str:
    """libx264 when the PyAV wheel has it, else mpeg4."""
    import av  # PyAV: only when a clip is written or probed

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def second_level(second: int) -> int:
    """The grey level (0..255) of every frame of ``second``."""
    return 20 + 15 * second


def write_clip(path, spec: ClipSpec = ClipSpec()) -> pathlib.Path:
    """Encodes ``spec`` as H.264 (or MPEG-4) + AAC into ``path`` (the container follows the
    suffix: .mp4, .mkv, ...; an .mp4 keeps its index first, so truncating it leaves a readable
    header); returns the path."""
    import av  # PyAV: only when a clip is written or probed

    path = pathlib.Path(path)
    options = {"movflags": "faststart"} if path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=options) as container:
        video = container.add_stream(video_codec(), rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        audio = None
        if spec.channels:
            audio = container.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "mono" if spec.channels == 1 else "stereo"
        frames = int(round(spec.seconds * spec.fps))
        for index in range(frames):
            level = second_level(int(index / spec.fps))
            pixels = np.full((spec.height, spec.width, 3), level, np.uint8)
            pixels[:, : spec.width // 4, 0] = 255  # a red stripe: RGB order is checkable
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            frame.time_base = 1 / spec.fps
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            _write_audio(container, audio, spec)
    return path


def _write_audio(container, stream, spec: ClipSpec) -> None:
    import av  # PyAV: only when a clip is written or probed

    seconds = spec.seconds if spec.audio_seconds is None else spec.audio_seconds
    total = int(seconds * AUDIO_RATE)
    block = 1024
    times = np.arange(total) / AUDIO_RATE
    tones = [0.5 * np.sin(2 * np.pi * (440 * (c + 1)) * times) for c in range(spec.channels)]
    samples = np.stack(tones).astype(np.float32)
    for first in range(0, total, block):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, first : first + block]),
            format="fltp",
            layout=stream.layout.name,
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = first
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def truncate(path, fraction: float = 0.5) -> pathlib.Path:
    """Cuts ``path`` to ``fraction`` of its bytes in place (a download that stopped)."""
    path = pathlib.Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def write_test_clips(folder) -> dict[str, pathlib.Path]:
    """The tests' clip set in ``folder``: name -> path. 10 s 25 fps mono and 29.97 fps
    stereo (.mp4), 12 s 29.97 fps stereo (.mkv), no audio, 4 s, 5 s of audio under 10 s of
    video, a truncated file, a text file named .mp4 and an audio-only .m4a."""
    folder = pathlib.Path(folder)
    ntsc = fractions.Fraction(30000, 1001)
    specs = {
        "ten_25fps_mono.mp4": ClipSpec(seconds=10, channels=1),
        "twelve_ntsc_stereo.mkv": ClipSpec(seconds=12, fps=ntsc, channels=2),
        "ten_ntsc_stereo.mp4": ClipSpec(seconds=10, fps=ntsc, channels=2),
        "no_audio.mp4": ClipSpec(seconds=10, channels=0),
        "four_seconds.mp4": ClipSpec(seconds=4),
        "truncated.mp4": ClipSpec(seconds=10),
        "short_audio.mp4": ClipSpec(seconds=10, audio_seconds=5),
    }
    paths = {name: write_clip(folder / name, spec) for name, spec in specs.items()}
    truncate(paths["truncated.mp4"], 0.5)
    paths["not_a_video.mp4"] = folder / "not_a_video.mp4"
    paths["not_a_video.mp4"].write_text("this is text, not a video\n")
    paths["audio_only.m4a"] = _write_audio_only(folder / "audio_only.m4a")
    return paths


def _write_audio_only(path) -> pathlib.Path:
    import av  # PyAV: only when a clip is written or probed

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for first in range(0, 16000 * 2, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            frame.sample_rate, frame.pts = 16000, first
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return pathlib.Path(path)
