"""A bounded load test and a hot-reload test of the local server (127.0.0.1 only)."""

import concurrent.futures
import json
import shutil
import time

import keras
import numpy as np
import pytest
from serving_helpers import JSON_HEADERS, MODEL_NAME, http_call, random_videos, serving_in_thread
from stand_in import stand_in_model

from ave_tf.export import export_saved_model
from ave_tf.serving.client import ServingClient
from tfserving_standin.repository import ModelRepository, UnavailableLabelError
from tfserving_standin.server import ModelServer

THREADS = 8
REQUESTS = 400
VALID_EVERY = 4  # 100 valid batch-1 predicts, 300 invalid requests of 9 kinds


def _post(port, path, body, method="POST"):
    return http_call(port, method, path, body, JSON_HEADERS, timeout=120)


def test_bounded_mixed_load(server, loaded_v1):
    audio, visual = random_videos(1, seed=11)
    expected = loaded_v1.predict("serving_default", {"audio": audio, "visual": visual})
    path = f"/v1/models/{MODEL_NAME}:predict"
    valid = json.dumps({"inputs": {"audio": audio.tolist(), "visual": visual.tolist()}}).encode()
    invalid = [
        (path, b""),
        (path, b"{not json"),
        (path, b'{"instances": []}'),
        (path, b'{"inputs": {"audio": [[["x"]]], "visual": 0}}'),
        (path, b'{"inputs": {"sound": 1}}'),
        (path, b'{"inputs": {}, "instances": [1]}'),
        ("/v1/models/nope:predict", b'{"inputs": {}}'),
        (f"/v1/models/{MODEL_NAME}/versions/99:predict", b'{"inputs": {}}'),
        (path, json.dumps({"inputs": {"audio": [[[0.0] * 128] * 10], "visual": [[0.0]]}}).encode()),
    ]

    def one(i):
        if i % VALID_EVERY == 0:
            return "valid", _post(server.port, path, valid)
        request_path, body = invalid[i % len(invalid)]
        return "invalid", _post(server.port, request_path, body)

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(one, range(REQUESTS), timeout=240))
    elapsed = time.monotonic() - start
    valid_results = [answer for kind, answer in results if kind == "valid"]
    invalid_results = [answer for kind, answer in results if kind == "invalid"]
    assert len(valid_results) == REQUESTS // VALID_EVERY
    assert [status for status, _ in valid_results] == [200] * len(valid_results)
    want = expected["segment_probabilities"]
    for _, answer in valid_results:
        got = np.asarray(answer["outputs"]["segment_probabilities"], np.float32)
        np.testing.assert_array_equal(got, want)
    assert all(400 <= status < 500 and "error" in answer for status, answer in invalid_results)
    status, answer = _post(server.port, f"/v1/models/{MODEL_NAME}", None, method="GET")
    assert status == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE"
    assert elapsed < 240


def test_hot_reload_switches_to_new_version(tmp_path):
    keras.utils.set_random_seed(3)
    export_saved_model(stand_in_model(seed=1), tmp_path, MODEL_NAME)
    repository = ModelRepository(MODEL_NAME, tmp_path / MODEL_NAME, poll_seconds=0.2).start()
    try:
        with serving_in_thread(ModelServer(("127.0.0.1", 0), repository)) as server:
            client = ServingClient(server.url, MODEL_NAME)
            audio, visual = random_videos(2, seed=4)
            before = client.predict(audio, visual).segment_probabilities
            model_v2 = stand_in_model(seed=2)
            export_saved_model(model_v2, tmp_path, MODEL_NAME)
            deadline = time.monotonic() + 60
            seen = []  # every state the server reported while it switched
            while time.monotonic() < deadline:
                seen.append({s.version: s.state for s in client.status()})
                if seen[-1] == {2: "AVAILABLE", 1: "END"}:
                    break
                time.sleep(0.05)
            allowed = ({1: "AVAILABLE"}, {1: "AVAILABLE", 2: "AVAILABLE"})
            assert seen[-1] == {2: "AVAILABLE", 1: "END"}, seen
            assert all(states in allowed for states in seen[:-1]), seen
            after = client.predict(audio, visual).segment_probabilities
            want = np.asarray(model_v2({"audio": audio, "visual": visual})["segment_probabilities"])
            np.testing.assert_allclose(after, want, rtol=1e-5, atol=1e-6)
            assert not np.allclose(before, after)
            pinned = ServingClient(server.url, MODEL_NAME, version=1)
            with pytest.raises(Exception, match=r"Specific\(psp_fully, 1\)"):
                pinned.predict(audio, visual)
    finally:
        repository.stop()


def test_all_versions_and_labels(tmp_path):
    export_saved_model(stand_in_model(seed=1), tmp_path, MODEL_NAME)
    export_saved_model(stand_in_model(seed=2), tmp_path, MODEL_NAME)
    repository = ModelRepository(
        MODEL_NAME, tmp_path / MODEL_NAME, all_versions=True, labels={"stable": 1}, poll_seconds=0
    ).start()
    with serving_in_thread(ModelServer(("127.0.0.1", 0), repository)) as server:
        audio, visual = random_videos(1, seed=6)
        latest = ServingClient(server.url, MODEL_NAME).predict(audio, visual)
        v2 = ServingClient(server.url, MODEL_NAME, version=2).predict(audio, visual)
        stable = ServingClient(server.url, MODEL_NAME, label="stable").predict(audio, visual)
        v1 = ServingClient(server.url, MODEL_NAME, version=1).predict(audio, visual)
        np.testing.assert_array_equal(latest.segment_probabilities, v2.segment_probabilities)
        np.testing.assert_array_equal(stable.segment_probabilities, v1.segment_probabilities)
        assert not np.allclose(v1.segment_probabilities, v2.segment_probabilities)


def test_labels_must_name_a_loaded_version_and_keep_it_after_a_reload(tmp_path):
    """As TF Serving: a label of a version that is not loaded is refused at start; a label
    whose version a reload removed keeps pointing at it and answers 404 like the version."""
    export_saved_model(stand_in_model(seed=1), tmp_path, MODEL_NAME)
    export_saved_model(stand_in_model(seed=2), tmp_path, MODEL_NAME)
    base = tmp_path / MODEL_NAME
    for labels in ({"stable": 7}, {"stable": 1}):  # 1 is on disk but `latest` loads only 2
        with pytest.raises(UnavailableLabelError, match=r"stable=\d+: cannot assign"):
            ModelRepository(MODEL_NAME, base, labels=labels, poll_seconds=0).start()
    repository = ModelRepository(
        MODEL_NAME, base, all_versions=True, labels={"stable": 1}, poll_seconds=0
    ).start()
    with serving_in_thread(ModelServer(("127.0.0.1", 0), repository)) as server:
        path = f"/v1/models/{MODEL_NAME}/labels/stable"
        assert http_call(server.port, "GET", path)[0] == 200
        shutil.rmtree(base / "1")
        repository.refresh()
        status, answer = http_call(server.port, "GET", path)
        assert (status, answer["model_version_status"][0]["state"]) == (200, "END")
        status, answer = http_call(server.port, "POST", path + ":predict", b'{"inputs": {}}')
        assert (status, answer) == (
            404,
            {"error": f"Servable not found for request: Specific({MODEL_NAME}, 1)"},
        )
