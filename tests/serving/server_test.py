"""REST end-to-end tests of the local TF-Serving-compatible server (127.0.0.1 only)."""

import gzip
import http.client
import json
import socket

import numpy as np
import pytest
from serving_helpers import MODEL_NAME, http_call, random_videos

from ave_tf.serving.client import Prediction, ServingClient

PREDICT = f"/v1/models/{MODEL_NAME}:predict"


def _json(document) -> bytes:
    return json.dumps(document).encode()


def assert_healthy(server):
    status, answer = http_call(server.port, "GET", f"/v1/models/{MODEL_NAME}")
    assert status == 200
    assert answer["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize("batch", [1, pytest.param(16, marks=pytest.mark.slow)])
@pytest.mark.parametrize("request_format", ["row", "columnar"])
@pytest.mark.parametrize("compress", [False, True])
def test_predictions_equal_in_process_savedmodel(
    server, loaded_v1, batch, request_format, compress
):
    audio, visual = random_videos(batch, seed=batch)
    expected = loaded_v1.predict("serving_default", {"audio": audio, "visual": visual})
    client = ServingClient(server.url, MODEL_NAME, request_format=request_format, compress=compress)
    outputs = client.predict_outputs(audio, visual)
    assert sorted(outputs) == sorted(expected)
    for name, want in expected.items():
        got = outputs[name]
        if want.dtype.kind in "SO":
            got, want = got.astype(str), want.astype(str)
        else:
            got = got.astype(want.dtype)
        np.testing.assert_array_equal(got, want, err_msg=name)
    prediction = Prediction.from_outputs(outputs)
    assert prediction.segment_classes.shape == (batch, 10)
    assert prediction.class_names[0] == "Church bell"


def test_row_answer_shape_follows_tf_serving(server):
    audio, visual = random_videos(2)
    body = _json(
        {
            "instances": [
                {"audio": a.tolist(), "visual": v.tolist()}
                for a, v in zip(audio, visual, strict=True)
            ]
        }
    )
    status, answer = http_call(server.port, "POST", PREDICT, body)
    assert status == 200
    assert len(answer["predictions"]) == 2
    assert sorted(answer["predictions"][0]) == [
        "class_names",
        "is_event",
        "segment_classes",
        "segment_probabilities",
        "video_class",
    ]
    assert isinstance(answer["predictions"][0]["video_class"], int)
    assert answer["predictions"][0]["class_names"][0] == "Church bell"


def test_status_and_metadata(server):
    status, answer = http_call(server.port, "GET", f"/v1/models/{MODEL_NAME}/versions/1")
    assert status == 200
    assert answer == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    status, answer = http_call(server.port, "GET", f"/v1/models/{MODEL_NAME}/metadata")
    assert status == 200
    assert answer["model_spec"] == {"name": MODEL_NAME, "signature_name": "", "version": "1"}
    signature = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["visual"]["dtype"] == "DT_FLOAT"
    dims = [d["size"] for d in signature["inputs"]["visual"]["tensor_shape"]["dim"]]
    assert dims == ["-1", "10", "7", "7", "512"]
    assert signature["outputs"]["is_event"]["dtype"] == "DT_BOOL"


def _valid_visual():
    return np.zeros((10, 7, 7, 512)).tolist()


def _audio(value=0.0):
    return np.full((10, 128), value).tolist()


BAD_REQUESTS = {
    "empty body": (PREDICT, b"", 400, "JSON Parse error: The document is empty"),
    "invalid json": (PREDICT, b'{"inputs": [1,', 400, "JSON Parse error"),
    "not an object": (PREDICT, b"[1, 2]", 400, "Is not object"),
    "neither key": (
        PREDICT,
        _json({"signature_name": "serving_default"}),
        400,
        "Missing 'inputs' or 'instances' key",
    ),
    "both keys": (
        PREDICT,
        _json({"inputs": {}, "instances": []}),
        400,
        "expecting only one of 'inputs' or 'instances' keys to exist",
    ),
    "empty instances": (PREDICT, _json({"instances": []}), 400, "No values in 'instances' array"),
    "row wrong name": (
        PREDICT,
        _json({"instances": [{"sound": 1, "visual": 2}]}),
        400,
        "does not have named input: sound",
    ),
    "row missing name": (
        PREDICT,
        _json({"instances": [{"audio": _audio()}]}),
        400,
        "keys must be equal to: audio,visual",
    ),
    "columnar wrong name": (
        PREDICT,
        _json({"inputs": {"sound": 1, "visual": 2}}),
        400,
        "Missing named input: audio in 'inputs' object. (got unknown input(s): sound)",
    ),
    "columnar plain list": (
        PREDICT,
        _json({"inputs": [1, 2]}),
        400,
        "inputs is a plain value/list, but expecting an object",
    ),
    "wrong audio shape": (
        PREDICT,
        _json({"inputs": {"audio": [np.zeros((10, 127)).tolist()], "visual": [_valid_visual()]}}),
        400,
        "Input 'audio' has shape [1,10,127] but the signature expects [-1,10,128]",
    ),
    "wrong visual rank": (
        PREDICT,
        _json({"instances": [{"audio": _audio(), "visual": _audio()}]}),
        400,
        "Input 'visual' has shape [1,10,128] but the signature expects [-1,10,7,7,512]",
    ),
    "ragged": (
        PREDICT,
        _json({"inputs": {"audio": [[[0.0] * 128] * 9 + [[0.0] * 127]], "visual": 0}}),
        400,
        "Encountered list at unexpected size: 127 at level: 2 expected size: 128",
    ),
    "string value": (
        PREDICT,
        _json({"inputs": {"audio": [[["x"] + [0.5] * 127] * 10], "visual": 0}}),
        400,
        'JSON Value: "x" Type: String is not of expected type: float',
    ),
    "bool value": (
        PREDICT,
        _json({"inputs": {"audio": [[[1.0] * 127 + [True]] * 10], "visual": 0}}),
        400,
        "JSON Value: true Type: True is not of expected type: float",
    ),
    "null value": (
        PREDICT,
        _json({"instances": [{"audio": [[None] * 128] * 10, "visual": 0}]}),
        400,
        "Type: Null is not of expected type: float",
    ),
    "too large for float": (
        PREDICT,
        _json({"inputs": {"audio": [_audio(1e39)], "visual": 0}}),
        400,
        "Cannot convert JSON value: 1e+39 to float without loss",
    ),
    "nan": (
        PREDICT,
        _json({"inputs": {"audio": [_audio(float("nan"))], "visual": [_valid_visual()]}}),
        400,
        "Input 'audio' has a non-finite value (NaN or Infinity) at index [0,0,0]",
    ),
    "infinity": (
        PREDICT,
        _json(
            {
                "instances": [
                    {"audio": _audio(), "visual": np.full((10, 7, 7, 512), -np.inf).tolist()}
                ]
            }
        ),
        400,
        "Input 'visual' has a non-finite value",
    ),
    "batch mismatch": (
        PREDICT,
        _json({"inputs": {"audio": [_audio(), _audio()], "visual": [_valid_visual()]}}),
        400,
        "Inputs disagree on the batch size: audio has 2, visual has 1",
    ),
    "unknown signature": (
        PREDICT,
        _json({"signature_name": "nope", "inputs": {}}),
        400,
        'Serving signature name: "nope" not found in signature def',
    ),
    "unknown model": (
        "/v1/models/nope:predict",
        _json({"inputs": {}}),
        404,
        "Servable not found for request: Latest(nope)",
    ),
    "unknown version": (
        f"/v1/models/{MODEL_NAME}/versions/7:predict",
        _json({"inputs": {}}),
        404,
        f"Servable not found for request: Specific({MODEL_NAME}, 7)",
    ),
    "unknown label": (
        f"/v1/models/{MODEL_NAME}/labels/canary:predict",
        _json({"inputs": {}}),
        400,
        "Unrecognized servable version label: canary",
    ),
    "malformed path": (
        "/v1/models/psp_fully:explain",
        b"{}",
        400,
        "Malformed request: POST /v1/models/psp_fully:explain",
    ),
    "classify": (
        f"/v1/models/{MODEL_NAME}:classify",
        b"{}",
        400,
        "Was: tensorflow/serving/predict",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_answer_like_tf_serving(server, case):
    path, body, want_status, want_message = BAD_REQUESTS[case]
    status, answer = http_call(server.port, "POST", path, body)
    assert status == want_status, answer
    assert set(answer) == {"error"}
    assert want_message in answer["error"]
    assert_healthy(server)


@pytest.mark.parametrize(
    "path, want_status, want_message",
    [
        ("/v1/models/nope", 404, "Could not find any versions of model nope"),
        (
            f"/v1/models/{MODEL_NAME}/versions/3",
            404,
            f"Could not find version 3 of model {MODEL_NAME}",
        ),
        ("/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
        ("/v1/models", 400, "Missing model name in request."),
        ("/v2/whatever", 404, "Not found: GET /v2/whatever"),
    ],
)
def test_bad_status_requests(server, path, want_status, want_message):
    status, answer = http_call(server.port, "GET", path)
    assert (status, answer) == (want_status, {"error": want_message})


def test_body_over_limit_is_413_without_reading_it(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {server.max_body_bytes + 1}\r\n\r\n".encode()
        )
        response = http.client.HTTPResponse(sock)
        response.begin()  # answered before any of the body was sent
        answer = json.loads(response.read())
    assert response.status == 413
    assert response.getheader("Connection") == "close"
    assert answer == {
        "error": f"Request body of {server.max_body_bytes + 1} bytes exceeds the limit of "
        f"{server.max_body_bytes} bytes"
    }
    assert_healthy(server)


def test_gzip_bomb_is_413_and_bad_gzip_is_400(server):
    bomb = gzip.compress(b" " * (server.max_body_bytes + 10))
    headers = {"Content-Encoding": "gzip"}
    status, answer = http_call(server.port, "POST", PREDICT, bomb, headers)
    assert status == 413 and "Decompressed request body exceeds the limit" in answer["error"]
    status, answer = http_call(server.port, "POST", PREDICT, b"not gzip", headers)
    assert status == 400 and "Failed to decompress gzip request body" in answer["error"]
    assert_healthy(server)
