"""Tests of the REST client: typed errors, local input checks, retries, timeouts, pinning."""

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest
from serving_helpers import MODEL_NAME, random_videos, serving_in_thread

from ave_tf.inputs import InvalidInputError
from ave_tf.serving.client import (
    BadRequestError,
    ModelNotFoundError,
    PayloadTooLargeError,
    ServerUnavailableError,
    ServingClient,
)
from tfserving_standin.server import ModelServer


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers from a script of (status, document, delay) and counts requests."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length", 0))
        self.server.bodies.append(self.rfile.read(length))
        self.server.hits.append(self.path)
        self.server.peers.append(self.client_address)
        # without saying so (no `Connection: close`), as a server ending an idle connection
        self.close_connection = self.server.close_silently
        status, document, delay = self.server.script.pop(0)
        if delay:
            threading.Event().wait(delay)
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def scripted():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.daemon_threads = True
    server.hits, server.script, server.bodies, server.peers = [], [], [], []
    server.close_silently = False
    with serving_in_thread(server):
        yield server


def _answer(batch):
    return {
        "outputs": {
            "segment_probabilities": np.full((batch, 10, 29), 1 / 29).tolist(),
            "segment_classes": [[28] * 10] * batch,
            "is_event": [[False] * 10] * batch,
            "video_class": [0] * batch,
            "class_names": [["a"] * 29] * batch,
        }
    }


def test_retries_503_and_504_then_succeeds(scripted):
    scripted.script += [
        (503, {"error": "busy"}, 0),
        (504, {"error": "slow"}, 0),
        (200, _answer(1), 0),
    ]
    client = ServingClient(f"http://127.0.0.1:{scripted.server_port}", "m", retries=2, backoff=0.01)
    prediction = client.predict(*random_videos(1))
    assert len(scripted.hits) == 3 and len(prediction) == 1
    assert prediction.class_names[0] == "a"


def test_gives_up_after_retries_with_the_server_message(scripted):
    scripted.script += [(503, {"error": "overloaded"}, 0)] * 2
    client = ServingClient(f"http://127.0.0.1:{scripted.server_port}", "m", retries=1, backoff=0.01)
    with pytest.raises(ServerUnavailableError) as raised:
        client.predict(*random_videos(1))
    assert (raised.value.status, raised.value.message) == (503, "overloaded")
    assert len(scripted.hits) == 2


@pytest.mark.parametrize("request_format", ["row", "columnar"])
def test_request_json_carries_the_exact_float32_values(scripted, request_format):
    """orjson writes float32 values in their shortest form; any JSON reader gets them back."""
    scripted.script += [(200, _answer(2), 0)]
    audio, visual = random_videos(2, seed=5)
    audio[0, 0, :3] = [1e-38, -3.4e38, 0.1]
    client = ServingClient(
        f"http://127.0.0.1:{scripted.server_port}", "m", request_format=request_format
    )
    prediction = client.predict(audio, visual)
    document = json.loads(scripted.bodies[0])  # the standard library, not the client's reader
    assert document["signature_name"] == "serving_default"
    if request_format == "row":
        sent = {name: [row[name] for row in document["instances"]] for name in ("audio", "visual")}
    else:
        sent = document["inputs"]
    np.testing.assert_array_equal(np.asarray(sent["audio"], np.float32), audio)
    np.testing.assert_array_equal(np.asarray(sent["visual"], np.float32), visual)
    float64_digits = json.dumps([audio.tolist(), visual.tolist()], separators=(",", ":"))
    assert len(scripted.bodies[0]) < 0.8 * len(float64_digits)  # shortest float32 text
    np.testing.assert_array_equal(prediction.segment_probabilities, np.float32(1 / 29))


def test_keeps_its_connection_and_reopens_one_the_server_closed(scripted):
    scripted.script += [(200, _answer(1), 0)] * 5
    client = ServingClient(f"http://127.0.0.1:{scripted.server_port}", "m", retries=0)
    for _ in range(3):
        client.predict(*random_videos(1))
    assert len(set(scripted.peers)) == 1  # one connection for three requests
    scripted.close_silently = True
    client.predict(*random_videos(1))  # the server closes this connection after answering
    scripted.close_silently = False
    client.predict(*random_videos(1))  # sent on the closed connection, then on a new one
    assert len(scripted.hits) == 5  # nothing lost, nothing sent twice to the server
    assert len(set(scripted.peers)) == 2


def test_400_is_not_retried(scripted):
    scripted.script += [(400, {"error": "bad thing"}, 0)]
    client = ServingClient(f"http://127.0.0.1:{scripted.server_port}", "m", retries=3)
    with pytest.raises(BadRequestError, match="bad thing"):
        client.status()
    assert len(scripted.hits) == 1


def test_timeout(scripted):
    scripted.script += [(200, _answer(1), 2.0)]
    client = ServingClient(f"http://127.0.0.1:{scripted.server_port}", "m", timeout=0.3, retries=0)
    with pytest.raises(ServerUnavailableError, match="cannot reach server"):
        client.predict(*random_videos(1))


def test_version_and_label_urls(scripted):
    base = f"http://127.0.0.1:{scripted.server_port}"
    scripted.script += [(200, _answer(1), 0)] * 2
    ServingClient(base, "psp", version=3, request_format="row").predict(*random_videos(1))
    ServingClient(base, "psp", label="stable").predict(*random_videos(1))
    assert scripted.hits == [
        "/v1/models/psp/versions/3:predict",
        "/v1/models/psp/labels/stable:predict",
    ]
    with pytest.raises(ValueError, match="not both"):
        ServingClient(base, "psp", version=1, label="x")
    with pytest.raises(ValueError, match="request_format"):
        ServingClient(base, "psp", request_format="rows")
    with pytest.raises(ValueError, match="URL"):
        ServingClient("localhost:8501", "psp")


@pytest.mark.parametrize(
    "audio_shape, visual_shape, poison, message",
    [
        ((1, 10, 127), (1, 10, 7, 7, 512), None, r"audio must have shape \(batch, 10, 128\)"),
        ((1, 10, 128), (1, 10, 7, 7, 500), None, "visual must have shape"),
        ((2, 10, 128), (1, 10, 7, 7, 512), None, "disagree on the batch size: 2 vs 1"),
        ((0, 10, 128), (0, 10, 7, 7, 512), None, "empty batch"),
        ((1, 10, 128), (1, 10, 7, 7, 512), np.nan, r"audio has a non-finite value .* \(0, 0, 3\)"),
        ((1, 10, 128), (1, 10, 7, 7, 512), np.inf, "non-finite"),
    ],
)
def test_inputs_checked_before_sending(scripted, audio_shape, visual_shape, poison, message):
    client = ServingClient(f"http://127.0.0.1:{scripted.server_port}", "m")
    audio, visual = np.zeros(audio_shape, np.float32), np.zeros(visual_shape, np.float32)
    if poison is not None:
        audio[0, 0, 3] = poison
    with pytest.raises(InvalidInputError, match=message):
        client.predict(audio, visual)
    assert scripted.hits == []


def test_typed_errors_from_the_local_server(server):
    audio, visual = random_videos(1)
    with pytest.raises(ModelNotFoundError) as raised:
        ServingClient(server.url, "nope").predict(audio, visual)
    assert raised.value.message == "Servable not found for request: Latest(nope)"
    with pytest.raises(ModelNotFoundError, match="Could not find version 9 of model"):
        ServingClient(server.url, MODEL_NAME, version=9).status()
    with pytest.raises(BadRequestError, match="Unrecognized servable version label: canary"):
        ServingClient(server.url, MODEL_NAME, label="canary").predict(audio, visual)
    with pytest.raises(BadRequestError, match='Serving signature name: "other" not found'):
        ServingClient(server.url, MODEL_NAME, signature="other").predict(audio, visual)
    small = ModelServer(("127.0.0.1", 0), server.repository, max_body_bytes=10_000)
    with serving_in_thread(small):
        for compress in (False, True):
            client = ServingClient(small.url, MODEL_NAME, compress=compress)
            with pytest.raises(PayloadTooLargeError, match="exceeds the limit of 10000 bytes"):
                client.predict(audio, visual)
    client = ServingClient(server.url, MODEL_NAME)
    assert [(s.version, s.state) for s in client.status()] == [(1, "AVAILABLE")]
    assert client.wait_until_available(timeout=5) == 1
    assert "serving_default" in client.metadata()["metadata"]["signature_def"]["signature_def"]


def test_rest_client_does_not_import_tensorflow(server, loaded_v1):
    """`ServingClient` (REST) is NumPy, orjson and pybase64: a process that imports it and
    predicts over REST has not imported TensorFlow (or Keras, gRPC) afterwards."""
    audio, visual = random_videos(2, seed=5)
    script = f"""
import sys
import numpy as np
from ave_tf.serving.client import ServingClient
audio = np.load(sys.argv[1])
visual = np.load(sys.argv[2])
for binary in (False, True):
    client = ServingClient({server.url!r}, {MODEL_NAME!r}, binary=binary)
    print(client.predict(audio, visual).segment_classes.tolist())
print(sorted(m for m in ("tensorflow", "keras", "grpc") if m in sys.modules))
"""
    with tempfile.TemporaryDirectory() as folder:
        paths = [os.path.join(folder, name) for name in ("audio.npy", "visual.npy")]
        np.save(paths[0], audio)
        np.save(paths[1], visual)
        done = subprocess.run(
            [sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    *answers, imported = done.stdout.splitlines()
    expected = loaded_v1.predict("serving_default", {"audio": audio, "visual": visual})
    assert answers == [str(expected["segment_classes"].tolist())] * 2
    assert imported == "[]"
