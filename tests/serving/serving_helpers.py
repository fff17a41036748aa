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
    """audio (batch, 10, 128) and visual (batch, 10, 7, 7, 512) float32 features, both
    non-negative as the AVE release's are (audio after VGGish's fc2 ReLU, about half zeros)."""
    rng = np.random.default_rng(seed)
    audio = np.maximum(rng.normal(size=(batch, ave.NUM_SEGMENTS, ave.AUDIO_DIM)), 0)
    audio = audio.astype(np.float32)
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
    """`python -m tfserving_standin.serve *args` in a subprocess (TensorFlow's logs quiet, text
    pipes).

    Yields the process as soon as it is started (read its address lines from `stdout`); on
    leaving the block it is terminated (SIGTERM) and, unless the block raised, must have
    exited with status 0.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tfserving_standin.serve", *args],
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


class _SharedStream:
    """One buffered reader handed to successive `HTTPResponse`s (each would otherwise buffer
    ahead on a reader of its own and lose the next answer), never closed by them."""

    def __init__(self, sock):
        self._file = sock.makefile("rb")

    def makefile(self, *args, **kwargs):
        return self

    def close(self):
        pass

    def __getattr__(self, name):
        return getattr(self._file, name)


def exchange(port: int, data: bytes, responses: int = 1, timeout: float = 30) -> list:
    """Sends raw bytes on one connection; returns [(status, JSON answer)] read back in order
    (fewer when the server closed the connection first)."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        stream = _SharedStream(sock)
        for _ in range(responses):
            response = http.client.HTTPResponse(stream)
            try:
                response.begin()
            except (http.client.RemoteDisconnected, ConnectionError):
                break
            answers.append((response.status, json.loads(response.read())))
    return answers


def post(port: int, path: str, body: bytes, headers: str = "") -> tuple[int, dict]:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    (answer,) = exchange(port, head.encode() + body)
    return answer


def assert_healthy(port: int) -> None:
    """The model's status answers 200 AVAILABLE on a fresh connection."""
    ((status, answer),) = exchange(port, f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\n\r\n".encode())
    assert status == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE"
