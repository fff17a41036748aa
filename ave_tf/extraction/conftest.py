"""Small generated video files shared by the extraction tests (written once per session)."""

import fractions

import pytest

from ave_tf.testing.clips import ClipSpec, truncate, write_clip

NTSC = fractions.Fraction(30000, 1001)


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """name -> path: 64x48 H.264 (libx264, else mpeg4) + AAC files of known content."""
    folder = tmp_path_factory.mktemp("clips")
    specs = {
        "ten_25fps_mono.mp4": ClipSpec(seconds=10, channels=1),
        "twelve_ntsc_stereo.mkv": ClipSpec(seconds=12, fps=NTSC, channels=2),
        "ten_ntsc_stereo.mp4": ClipSpec(seconds=10, fps=NTSC, channels=2),
        "no_audio.mp4": ClipSpec(seconds=10, channels=0),
        "four_seconds.mp4": ClipSpec(seconds=4),
        "truncated.mp4": ClipSpec(seconds=10),
    }
    paths = {name: write_clip(folder / name, spec) for name, spec in specs.items()}
    truncate(paths["truncated.mp4"], 0.5)
    (folder / "not_a_video.mp4").write_text("this is text, not a video\n")
    paths["not_a_video.mp4"] = folder / "not_a_video.mp4"
    paths["audio_only.m4a"] = _write_audio_only(folder / "audio_only.m4a")
    return paths


def _write_audio_only(path):
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for first in range(0, 16000 * 2, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            frame.sample_rate, frame.pts = 16000, first
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
