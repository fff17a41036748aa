"""A bounded mixed load on REST and gRPC together, with a version hot-swap in the middle.

16 client threads send 480 requests (127.0.0.1 only): a quarter valid batch-1 predicts (half
REST JSON, half gRPC), the rest malformed (REST and gRPC alternately). While they run, version
2 appears (an exported version renamed into place, as an export does) and replaces version 1;
the requests of the last quarter wait until it serves. No valid request may
fail (each answer is version 1's or version 2's outputs, and both are seen), every invalid one
is a 4xx (REST) or INVALID_ARGUMENT (gRPC). p50/p99 latencies are printed (`-s`).
"""

import collections
import concurrent.futures
import json
import threading
import time

import grpc
import keras
import numpy as np
import pytest
from serving_helpers import JSON_HEADERS, MODEL_NAME, http_call, predict_request, random_videos
from stand_in import stand_in_model
from tensorflow.core.framework import types_pb2

from ave_tf.export import export_saved_model
from ave_tf.serving.grpc_client import GrpcClient
from tfserving_standin.grpc_server import GrpcModelServer
from tfserving_standin.repository import ModelRepository
from tfserving_standin.server import ModelServer

THREADS = 16
REQUESTS = 480
VALID_EVERY = 4  # 120 valid (60 REST, 60 gRPC), 360 invalid (180 REST, 180 gRPC)
SWAP_AFTER = REQUESTS // 4  # answered requests before version 2 appears on disk
AFTER_SWAP = 3 * REQUESTS // 4  # requests from here on wait until version 2 serves
SECONDS = 300  # the whole load, a bound not a target
PREDICT_PATH = f"/v1/models/{MODEL_NAME}:predict"
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


def _rest(port: int, path: str, body: bytes) -> tuple[int, dict]:
    return http_call(port, "POST", path, body, JSON_HEADERS, timeout=120)


def _grpc_request(audio, visual, mutate=None) -> bytes:
    request = predict_request(audio, visual)
    if mutate:
        mutate(request)
    return request.SerializeToString()


def _invalid_requests(audio, visual):
    """(protocol, payload) pairs: REST (path, body) answered 4xx, gRPC bytes INVALID_ARGUMENT."""
    nan_audio = audio.copy()
    nan_audio[0, 0, 0] = np.nan
    rest = [
        (PREDICT_PATH, b""),
        (PREDICT_PATH, b"{not json"),
        (PREDICT_PATH, b'{"instances": []}'),
        (PREDICT_PATH, b'{"inputs": {"audio": [[["x"]]], "visual": 0}}'),
        (PREDICT_PATH, b'{"inputs": {"sound": 1}}'),
        ("/v1/models/nope:predict", b'{"inputs": {}}'),
        (f"/v1/models/{MODEL_NAME}/versions/99:predict", b'{"inputs": {}}'),
        (
            PREDICT_PATH,
            json.dumps({"inputs": {"audio": [[[0.0] * 128] * 10], "visual": [[0]]}}).encode(),
        ),
    ]

    def set_dtype(request):
        request.inputs["audio"].dtype = types_pb2.DT_DOUBLE

    def drop_visual(request):
        request.inputs.pop("visual")

    def garbage_content(request):
        request.inputs["visual"].tensor_content = b"garbage"

    def label(request):
        request.model_spec.version_label = "canary"

    def wrong_shape(request):
        request.inputs["audio"].tensor_shape.dim[2].size = 127

    grpc_bytes = [
        _grpc_request(audio, visual, mutate)
        for mutate in (set_dtype, drop_visual, garbage_content, label, wrong_shape)
    ]
    grpc_bytes += [_grpc_request(nan_audio, visual), b"\xff\xffnot a protobuf"]
    return [("rest", request) for request in rest], [("grpc", data) for data in grpc_bytes]


@pytest.mark.slow  # ~480 requests incl. 60 of ~1.2 MB JSON; 30-90 s on 2 busy cores
def test_mixed_rest_and_grpc_load_with_a_hot_swap(tmp_path):
    keras.utils.set_random_seed(7)
    models = {1: stand_in_model(seed=1), 2: stand_in_model(seed=2)}
    export_saved_model(models[1], tmp_path, MODEL_NAME)
    export_saved_model(models[2], tmp_path / "staging", MODEL_NAME)  # moved in mid-load
    repository = ModelRepository(MODEL_NAME, tmp_path / MODEL_NAME, poll_seconds=0.2).start()
    rest = ModelServer(("127.0.0.1", 0), repository)
    threading.Thread(target=rest.serve_forever, daemon=True).start()
    server = GrpcModelServer(("127.0.0.1", 0), repository).start()

    audio, visual = random_videos(1, seed=43)
    want = {
        v: np.asarray(m({"audio": audio, "visual": visual})["segment_probabilities"])
        for v, m in models.items()
    }
    valid_body = json.dumps({"inputs": {"audio": audio.tolist(), "visual": visual.tolist()}})
    invalid_rest, invalid_grpc = _invalid_requests(audio, visual)
    answered, swapped = threading.Semaphore(0), threading.Event()

    def swap():
        for _ in range(SWAP_AFTER):
            answered.acquire(timeout=SECONDS)
        (tmp_path / "staging" / MODEL_NAME / "1").rename(tmp_path / MODEL_NAME / "2")
        deadline = time.monotonic() + 120
        while repository.versions() != [2] and time.monotonic() < deadline:
            time.sleep(0.05)
        swapped.set()

    with (
        GrpcClient(server.target, MODEL_NAME, timeout=120) as client,
        grpc.insecure_channel(server.target) as channel,
    ):
        raw_predict = channel.unary_unary(PREDICT_METHOD)

        def one(i):
            if i >= AFTER_SWAP:
                assert swapped.wait(SECONDS), "version 2 was not served in time"
            start = time.monotonic()
            if i % VALID_EVERY == 0 and (i // VALID_EVERY) % 2 == 0:
                status, answer = _rest(rest.port, PREDICT_PATH, valid_body.encode())
                outcome = ("rest", "valid", status, answer)
            elif i % VALID_EVERY == 0:
                try:
                    outputs = client.predict_outputs({"audio": audio, "visual": visual})
                    outcome = ("grpc", "valid", "OK", outputs)
                except Exception as error:  # recorded: a failed valid request fails the test
                    outcome = ("grpc", "valid", type(error).__name__, str(error))
            else:
                invalid = (invalid_rest + invalid_grpc)[i % (len(invalid_rest) + len(invalid_grpc))]
                if invalid[0] == "rest":
                    status, answer = _rest(rest.port, *invalid[1])
                    outcome = ("rest", "invalid", status, answer)
                else:
                    try:
                        raw_predict(invalid[1], timeout=120)
                        outcome = ("grpc", "invalid", "OK", None)
                    except grpc.RpcError as error:
                        outcome = ("grpc", "invalid", error.code().name, error.details())
            answered.release()
            return i, time.monotonic() - start, outcome

        swapper = threading.Thread(target=swap, daemon=True)
        start = time.monotonic()
        swapper.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
                results = list(pool.map(one, range(REQUESTS), timeout=SECONDS))
        finally:
            elapsed = time.monotonic() - start
            server.stop(grace=None)
            rest.shutdown()
            rest.server_close()
            repository.stop()

    versions_seen, latencies, codes = collections.Counter(), collections.defaultdict(list), {}
    first_v2 = REQUESTS
    for i, seconds, (protocol, kind, code, answer) in results:
        latencies[protocol, kind].append(seconds)
        codes.setdefault((protocol, kind), collections.Counter())[code] += 1
        if kind == "invalid":
            if protocol == "rest":
                assert 400 <= code < 500 and "error" in answer, (i, code, answer)
            else:
                assert code == "INVALID_ARGUMENT", (i, code, answer)
            continue
        assert code in (200, "OK"), (i, protocol, code, answer)
        got = np.asarray(
            answer["outputs"]["segment_probabilities"]
            if protocol == "rest"
            else answer["segment_probabilities"],
            np.float32,
        )
        version = next(
            (v for v, w in want.items() if np.allclose(got, w, rtol=1e-5, atol=1e-6)), None
        )
        assert version is not None, (i, protocol, "answer is neither version's")
        assert i < AFTER_SWAP or version == 2, (i, "answered by version 1 after the swap")
        versions_seen[version] += 1
        if version == 2:
            first_v2 = min(first_v2, i)
    print(f"\n{REQUESTS} requests by {THREADS} threads in {elapsed:.1f} s, version 1 -> 2 swap")
    for group in sorted(latencies):
        values = np.asarray(latencies[group]) * 1e3
        print(
            f"  {group[0]:4} {group[1]:7} {len(values):3}: {dict(codes[group])}, "
            f"p50 {np.percentile(values, 50):.1f} ms, p99 {np.percentile(values, 99):.1f} ms"
        )
    print(
        f"  valid answers by version: {dict(sorted(versions_seen.items()))}; "
        f"version 2 from request {first_v2} on"
    )
    assert sum(versions_seen.values()) == REQUESTS // VALID_EVERY
    assert versions_seen[1] > 0 and versions_seen[2] > 0
    assert elapsed < SECONDS
