"""Constants, data and process helpers shared by the serving tests."""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np

from ave_tf import ave

MODEL_NAME = "psp_fully"
TEST_MAX_BODY_BYTES = 128 * 1024 * 1024
"""Above a batch of 16 videos in row format (~81 MB of JSON)."""


def random_videos(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """audio (batch, 10, 128) and visual (batch, 10, 7, 7, 512) float32 features."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(batch, ave.NUM_SEGMENTS, ave.AUDIO_DIM)).astype(np.float32)
    visual = rng.random((batch, ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE), dtype=np.float32)
    return audio, visual


@contextlib.contextmanager
def serve_command(*args: str) -> Iterator[subprocess.Popen]:
    """`python -m ave_tf.serve *args` in a subprocess (TensorFlow's logs quiet, text pipes).

    Yields the process as soon as it is started (read its address lines from `stdout`); on
    leaving the block it is terminated (SIGTERM) and, unless the block raised, must have
    exited with status 0.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "ave_tf.serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read()
