"""Constants, data and process helpers shared by the serving tests."""

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

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


def unused_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (nothing listens on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


JSON_HEADERS = {"Content-Type": "application/json"}


def http_call(port: int, method: str, path: str, body=b"", headers=None, timeout: float = 60):
    """(status, decoded JSON answer) of one request to a server on 127.0.0.1:`port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def predict_request(audio: np.ndarray, visual: np.ndarray) -> predict_pb2.PredictRequest:
    """A gRPC PredictRequest of `MODEL_NAME` (default signature) for a batch of features,
    encoded by `tf.make_tensor_proto` (binary `tensor_content`)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.inputs["audio"].CopyFrom(tf.make_tensor_proto(audio))
    request.inputs["visual"].CopyFrom(tf.make_tensor_proto(visual))
    return request


@contextlib.contextmanager
def serving_in_thread(server):
    """Runs `server.serve_forever()` (a `socketserver` server, e.g. a `ModelServer` on port 0)
    in a daemon thread for the block, then shuts it down and closes its socket; yields it."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


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
