"""Tests of the gRPC server (`tfserving_standin.grpc_server`) and client (`grpc_client`).

The gRPC answers are compared with the REST answers of the same repository for the same
inputs; every fault is checked for TF Serving's status code and wording. 127.0.0.1 only.
"""

import re
import shutil
import threading
import time

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import (
    MODEL_NAME,
    predict_request,
    random_videos,
    serve_command,
    serving_in_thread,
    unused_port,
)
from stand_in import stand_in_model
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from ave_tf.export import export_saved_model
from ave_tf.serving.client import (
    BadRequestError,
    ModelNotFoundError,
    PayloadTooLargeError,
    ServerUnavailableError,
    ServingClient,
)
from ave_tf.serving.grpc_client import GrpcClient, tensor_proto
from ave_tf.testing.documented_output import assert_documented_output
from tfserving_standin.grpc_server import GrpcModelServer
from tfserving_standin.repository import ModelRepository
from tfserving_standin.server import ModelServer

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


@pytest.fixture(scope="module")
def client(grpc_server):
    with GrpcClient(grpc_server.target, MODEL_NAME) as client:
        yield client


@pytest.fixture(scope="module")
def channel(grpc_server):
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def predictions(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def valid_request(batch: int = 1, seed: int = 0) -> predict_pb2.PredictRequest:
    """A PredictRequest for `batch` random videos (binary `tensor_content`)."""
    return predict_request(*random_videos(batch, seed))


def _rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=60)
    return raised.value


def test_predict_equals_rest_and_in_process(server, client, loaded_v1):
    audio, visual = random_videos(3, seed=31)
    over_grpc = client.predict_outputs({"audio": audio, "visual": visual})
    over_rest = ServingClient(server.url, MODEL_NAME).predict_outputs(audio, visual)
    in_process = loaded_v1.predict("serving_default", {"audio": audio, "visual": visual})
    assert sorted(over_grpc) == sorted(over_rest) == sorted(in_process)
    for name, value in over_grpc.items():
        assert value.dtype == in_process[name].dtype, name
        if name == "class_names":
            np.testing.assert_array_equal(value.astype(str), over_rest[name])
            np.testing.assert_array_equal(value, in_process[name])
        else:  # REST writes the shortest text that reads back as the same float32
            np.testing.assert_array_equal(value, over_rest[name].astype(value.dtype))
            np.testing.assert_array_equal(value, in_process[name])
    prediction = client.predict(audio, visual)
    np.testing.assert_array_equal(
        prediction.segment_classes, in_process["segment_classes"].astype(np.int64)
    )
    assert (
        prediction.class_names
        == ServingClient(server.url, MODEL_NAME).predict(audio, visual).class_names
    )


def test_typed_value_fields_equal_tensor_content(predictions):
    binary = valid_request(seed=32)
    typed = predict_pb2.PredictRequest()
    typed.CopyFrom(binary)
    for name in ("audio", "visual"):
        values = tf.make_ndarray(binary.inputs[name])
        tensor = typed.inputs[name]
        tensor.ClearField("tensor_content")
        tensor.float_val.extend(values.ravel().tolist())
    np.testing.assert_array_equal(
        tf.make_ndarray(predictions.Predict(typed).outputs["segment_probabilities"]),
        tf.make_ndarray(predictions.Predict(binary).outputs["segment_probabilities"]),
    )


def test_response_names_the_version_and_honours_output_filter(predictions):
    request = valid_request(seed=33)
    request.output_filter.append("video_class")
    response = predictions.Predict(request, timeout=60)
    assert list(response.outputs) == ["video_class"]
    assert response.outputs["video_class"].dtype == types_pb2.DT_INT32
    assert response.model_spec.name == MODEL_NAME
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_metadata_and_status_equal_rest(server, client):
    rest = ServingClient(server.url, MODEL_NAME)
    assert client.metadata() == rest.metadata()
    assert client.status() == rest.status()
    assert [(s.version, s.state, s.error_code) for s in client.status()] == [(1, "AVAILABLE", "OK")]


def _drop(name):
    return lambda request: request.inputs.pop(name)


def _set_dims(name, dims):
    def mutate(request):
        shape = request.inputs[name].tensor_shape
        del shape.dim[:]
        for size in dims:
            shape.dim.add(size=size)

    return mutate


def _set(name, **fields):
    def mutate(request):
        tensor = request.inputs[name]
        for field, value in fields.items():
            setattr(tensor, field, value)

    return mutate


def _nan(request):
    values = tf.make_ndarray(request.inputs["audio"]).copy()
    values[0, 3, 5] = np.nan
    request.inputs["audio"].CopyFrom(tf.make_tensor_proto(values))


def _short_float_val(request):
    tensor = request.inputs["audio"]
    tensor.ClearField("tensor_content")
    tensor.float_val.extend([0.5, 0.25, 1.0])


def _rename(request):
    request.inputs["sound"].CopyFrom(request.inputs.pop("audio"))


INVALID = grpc.StatusCode.INVALID_ARGUMENT
PREDICT_FAULTS = [
    ("no model_spec", lambda r: r.ClearField("model_spec"), INVALID, "Missing ModelSpec"),
    (
        "unknown model",
        lambda r: setattr(r.model_spec, "name", "nope"),
        grpc.StatusCode.NOT_FOUND,
        r"Servable not found for request: Latest\(nope\)",
    ),
    (
        "unknown version",
        lambda r: setattr(r.model_spec.version, "value", 99),
        grpc.StatusCode.NOT_FOUND,
        r"Servable not found for request: Specific\(psp_fully, 99\)",
    ),
    (
        "unknown label",
        lambda r: setattr(r.model_spec, "version_label", "canary"),
        INVALID,
        "Unrecognized servable version label: canary",
    ),
    (
        "unknown signature",
        lambda r: setattr(r.model_spec, "signature_name", "other"),
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "other" not found.',
    ),
    (
        "missing input",
        _drop("visual"),
        INVALID,
        re.escape(
            "input size does not match signature: 1!=2 len({audio}) != len({audio,visual}). "
            "Sent extra: {}. Missing but required: {visual}."
        ),
    ),
    (
        "extra input",
        lambda r: r.inputs["zzz"].CopyFrom(r.inputs["audio"]),
        INVALID,
        r"3!=2 .* Sent extra: \{zzz\}",
    ),
    ("renamed input", _rename, INVALID, "input tensor alias not found in signature: sound"),
    (
        "wrong dtype",
        _set("audio", dtype=types_pb2.DT_DOUBLE),
        INVALID,
        "Expected input audio to be float but get double.",
    ),
    (
        "unknown dtype",
        _set("visual", dtype=999),
        INVALID,
        "Expected input visual to be float but get unknown dtype 999.",
    ),
    (
        "wrong shape",
        _set_dims("audio", [1, 10, 127]),
        INVALID,
        re.escape("Input 'audio' has shape [1,10,127] but the signature expects [-1,10,128]"),
    ),
    (
        "wrong rank",
        _set_dims("visual", [1, 10, 49, 512]),
        INVALID,
        re.escape("Input 'visual' has shape [1,10,49,512]"),
    ),
    (
        "negative dim",
        _set_dims("audio", [-1, 10, 128]),
        INVALID,
        r"tensor parsing error: audio \(negative dimension",
    ),
    (
        "unknown rank",
        lambda r: setattr(r.inputs["audio"].tensor_shape, "unknown_rank", True),
        INVALID,
        r"tensor parsing error: audio \(the shape has an unknown rank\)",
    ),
    (
        "garbage tensor_content",
        _set("visual", tensor_content=b"\x00garbage"),
        INVALID,
        r"tensor parsing error: visual has 8 bytes of tensor_content; .* needs 1003520",
    ),
    (
        "huge batch, tiny content",
        _set_dims("audio", [2**40, 10, 128]),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        r"Input 'audio' holds 1099511627776 examples, more than the 32 this server takes",
    ),
    (
        "short float_val",
        _short_float_val,
        INVALID,
        r"tensor parsing error: audio holds 3 values; its shape \[1,10,128\] needs 1280",
    ),
    (
        "batch sizes disagree",
        lambda r: r.inputs["audio"].CopyFrom(tf.make_tensor_proto(random_videos(2)[0])),
        INVALID,
        "Inputs disagree on the batch size: audio has 2, visual has 1",
    ),
    (
        "empty batch",
        lambda r: [
            r.inputs[name].CopyFrom(tf.make_tensor_proto(array[:0]))
            for name, array in zip(("audio", "visual"), random_videos(1), strict=True)
        ],
        INVALID,
        "The batch is empty",
    ),
    ("NaN", _nan, INVALID, re.escape("Input 'audio' has a non-finite value (NaN or Infinity)")),
    (
        "unknown output",
        lambda r: r.output_filter.append("logits"),
        INVALID,
        "output tensor alias not found in signature: logits Outputs expected to be in the set "
        "{class_names,is_event,segment_classes,segment_probabilities,video_class}.",
    ),
    (
        "duplicate output",
        lambda r: r.output_filter.extend(["is_event", "is_event"]),
        INVALID,
        "duplicate output tensor alias: is_event",
    ),
]


@pytest.mark.parametrize(
    "mutate, code, message",
    [case[1:] for case in PREDICT_FAULTS],
    ids=[case[0] for case in PREDICT_FAULTS],
)
def test_predict_faults_have_tf_serving_codes(predictions, mutate, code, message):
    request = valid_request()
    mutate(request)
    error = _rpc_error(predictions.Predict, request)
    assert error.code() == code
    assert re.search(message, error.details()), error.details()


def test_garbage_message_and_unknown_methods(channel, predictions):
    raw_predict = channel.unary_unary(PREDICT_METHOD)  # bytes in, bytes out
    error = _rpc_error(raw_predict, b"\xff\xff\xff\xff not a protobuf")
    assert error.code() == INVALID
    assert "Could not parse the request as a tensorflow.serving.PredictRequest" in error.details()
    for call, request, kind in (
        (predictions.Classify, classification_pb2.ClassificationRequest(), "classification"),
        (predictions.Regress, regression_pb2.RegressionRequest(), "regression"),
    ):
        request.model_spec.name = MODEL_NAME
        error = _rpc_error(call, request)
        assert error.code() == INVALID
        assert error.details().startswith(f"Expected {kind} signature method_name")
        assert error.details().endswith("Was: tensorflow/serving/predict")
    multi = channel.unary_unary("/tensorflow.serving.PredictionService/MultiInference")
    assert _rpc_error(multi, b"").code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize(
    "fields, code, message",
    [
        ({"metadata_field": ["signature_def"]}, INVALID, "Missing ModelSpec"),
        (
            {"model_spec": {"name": MODEL_NAME}},
            INVALID,
            "GetModelMetadataRequest must specify at least one metadata_field",
        ),
        (
            {"model_spec": {"name": MODEL_NAME}, "metadata_field": ["signature_def", "x"]},
            INVALID,
            "Metadata field x is not supported",
        ),
        (
            {"model_spec": {"name": "nope"}, "metadata_field": ["signature_def"]},
            grpc.StatusCode.NOT_FOUND,
            r"Latest\(nope\)",
        ),
    ],
)
def test_metadata_faults(predictions, fields, code, message):
    request = get_model_metadata_pb2.GetModelMetadataRequest(**fields)
    error = _rpc_error(predictions.GetModelMetadata, request)
    assert error.code() == code and re.search(message, error.details()), error.details()


@pytest.mark.parametrize(
    "fields, code, message",
    [
        ({}, INVALID, "Missing ModelSpec"),
        (
            {"model_spec": {"name": "nope"}},
            grpc.StatusCode.NOT_FOUND,
            "Could not find any versions of model nope",
        ),
        (
            {"model_spec": {"name": MODEL_NAME, "version": {"value": 5}}},
            grpc.StatusCode.NOT_FOUND,
            "Could not find version 5 of model psp_fully",
        ),
    ],
)
def test_status_faults(channel, fields, code, message):
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest(**fields)
    error = _rpc_error(models.GetModelStatus, request)
    assert error.code() == code and error.details() == message


def test_client_maps_codes_to_the_rest_client_errors(grpc_server, client):
    audio, visual = random_videos(1, seed=34)
    with pytest.raises(ModelNotFoundError, match=r"NOT_FOUND from grpc://.*Latest\(nope\)") as e:
        GrpcClient(grpc_server.target, "nope").predict(audio, visual)
    assert e.value.status == 404
    with pytest.raises(ModelNotFoundError, match="Could not find version 4 of model psp_fully"):
        GrpcClient(grpc_server.target, MODEL_NAME, version=4).status()
    with pytest.raises(BadRequestError, match="Unrecognized servable version label: x") as e:
        GrpcClient(grpc_server.target, MODEL_NAME, label="x").metadata()
    assert e.value.status == 400
    with pytest.raises(BadRequestError, match='FAILED_PRECONDITION .*key "x" not found'):
        client.predict_outputs({"audio": audio, "visual": visual}, signature_name="x")
    with pytest.raises(BadRequestError, match="Expected input audio to be float but get double"):
        client.predict_outputs({"audio": audio.astype(np.float64), "visual": visual})
    with pytest.raises(ValueError, match="not both"):
        GrpcClient(grpc_server.target, version=1, label="stable")
    with pytest.raises(ValueError, match="host:port"):
        GrpcClient("http://127.0.0.1:8500")


def test_unreachable_server_is_server_unavailable():
    with GrpcClient(f"127.0.0.1:{unused_port()}", timeout=10) as client:
        with pytest.raises(ServerUnavailableError, match="UNAVAILABLE from grpc://") as raised:
            client.status()
    assert raised.value.status == 503


def test_message_over_the_limit_is_resource_exhausted_and_server_stays_up(server):
    small = GrpcModelServer(("127.0.0.1", 0), server.repository, max_message_bytes=100_000)
    small.start()
    try:
        with GrpcClient(small.target, MODEL_NAME) as client:
            with pytest.raises(PayloadTooLargeError, match="RESOURCE_EXHAUSTED") as raised:
                client.predict(*random_videos(1, seed=35))
            assert raised.value.status == 413
            assert client.status()[0].state == "AVAILABLE"
    finally:
        small.stop(grace=None)


def test_port_in_use_is_an_os_error(grpc_server, server):
    with pytest.raises(OSError, match="cannot bind gRPC to 127.0.0.1"):
        GrpcModelServer(("127.0.0.1", grpc_server.port), server.repository)


class _BlockingVersion:
    """A loaded version whose predict waits until released (counts its calls)."""

    def __init__(self, loaded):
        self.loaded = loaded
        self.version, self.inputs = loaded.version, loaded.inputs
        self.signature_defs = loaded.signature_defs
        self.release = threading.Event()
        self.calls = 0

    def predict(self, signature, arrays):
        self.calls += 1
        assert self.release.wait(60)
        return self.loaded.predict(signature, arrays)


class _OneVersionRepository:
    name = MODEL_NAME

    def __init__(self, version):
        self.version = version

    def resolve(self, model_name, version=None, label=None):
        return self.version


def test_concurrency_limit_deadlines_and_abandoned_requests(loaded_v1):
    """One worker, at most two requests in the server: a third is refused at once; a
    request whose client gave up while it waited is never run."""
    blocking = _BlockingVersion(loaded_v1)
    server = GrpcModelServer(
        ("127.0.0.1", 0), _OneVersionRepository(blocking), workers=1, max_concurrent_rpcs=2
    ).start()
    audio, visual = random_videos(1, seed=36)
    results = {}

    def call(key, timeout):
        try:
            with GrpcClient(server.target, MODEL_NAME, timeout=timeout) as client:
                results[key] = client.predict(audio, visual)
        except Exception as error:  # recorded and asserted below
            results[key] = error

    try:
        running = threading.Thread(target=call, args=("running", 60))
        running.start()
        deadline = time.monotonic() + 30
        while blocking.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert blocking.calls == 1
        waiting = threading.Thread(target=call, args=("abandoned", 1.0))
        waiting.start()
        time.sleep(0.3)  # the second request is now queued behind the first
        call("refused", 10)
        waiting.join(30)
        blocking.release.set()
        running.join(60)
    finally:
        blocking.release.set()
        server.stop(grace=None)
    assert isinstance(results["refused"], ServerUnavailableError)
    assert "RESOURCE_EXHAUSTED" in str(results["refused"])
    assert isinstance(results["abandoned"], ServerUnavailableError)
    assert results["abandoned"].status == 504 and "DEADLINE_EXCEEDED" in str(results["abandoned"])
    np.testing.assert_array_equal(
        results["running"].segment_probabilities,
        loaded_v1.predict("serving_default", {"audio": audio, "visual": visual})[
            "segment_probabilities"
        ],
    )
    assert blocking.calls == 1  # the abandoned request never reached the model


class _BytesModel(tf.Module):
    """serving_default takes `audio_bytes` (batch,) DT_STRING: 10 x 128 little-endian floats."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="audio_bytes")])
    def serve(self, audio_bytes):
        values = tf.reshape(tf.io.decode_raw(audio_bytes, tf.float32), [-1, 10, 128])
        return {"segment_probabilities": tf.nn.softmax(values[..., :29])}


def test_string_inputs_travel_as_string_val(tmp_path):
    module = _BytesModel()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serve})
    repository = ModelRepository("bytes", tmp_path, poll_seconds=0).start()
    spec = repository.resolve("bytes").inputs["serving_default"]["audio_bytes"]
    assert (spec.shape, spec.dtype, spec.type_name) == ((None,), np.dtype(object), "string")
    server = GrpcModelServer(("127.0.0.1", 0), repository).start()
    try:
        with GrpcClient(server.target, "bytes") as client:
            audio = random_videos(2, seed=37)[0]
            blobs = np.array([video.astype("<f4").tobytes() for video in audio], dtype=object)
            got = client.predict_outputs({"audio_bytes": blobs})["segment_probabilities"]
            logits = audio[..., :29].astype(np.float64)
            want = np.exp(logits - logits.max(-1, keepdims=True))
            np.testing.assert_allclose(got, want / want.sum(-1, keepdims=True), rtol=1e-5)
            with pytest.raises(BadRequestError, match="INVALID_ARGUMENT") as raised:
                client.predict_outputs({"audio_bytes": np.array([b"\x00" * 7], dtype=object)})
            assert raised.value.status == 400
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "bytes"
        tensor = request.inputs["audio_bytes"]
        tensor.dtype = types_pb2.DT_STRING
        tensor.tensor_shape.dim.add(size=2)
        tensor.string_val.append(blobs[0])
        with grpc.insecure_channel(server.target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            error = _rpc_error(stub.Predict, request)
        assert error.code() == INVALID
        assert error.details() == (
            "tensor parsing error: audio_bytes holds 1 strings; its shape [2] needs 2"
        )
    finally:
        server.stop(grace=None)


def test_versions_labels_and_hot_reload_seen_through_grpc(tmp_path):
    keras.utils.set_random_seed(5)
    models = {1: stand_in_model(seed=1), 2: stand_in_model(seed=2)}
    export_saved_model(models[1], tmp_path, MODEL_NAME)
    repository = ModelRepository(
        MODEL_NAME, tmp_path / MODEL_NAME, all_versions=True, labels={"stable": 1}, poll_seconds=0.2
    ).start()
    rest = ModelServer(("127.0.0.1", 0), repository)
    server = GrpcModelServer(("127.0.0.1", 0), repository).start()

    def wait_for(states):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = {s.version: s.state for s in GrpcClient(server.target, MODEL_NAME).status()}
            if seen == states:
                return
            time.sleep(0.2)
        raise AssertionError(f"status {seen}, waited for {states}")

    def probabilities(**pin):
        with GrpcClient(server.target, MODEL_NAME, **pin) as client:
            return client.predict(audio, visual).segment_probabilities

    audio, visual = random_videos(2, seed=38)
    want = {
        v: np.asarray(m({"audio": audio, "visual": visual})["segment_probabilities"])
        for v, m in models.items()
    }
    try:
        with serving_in_thread(rest):
            np.testing.assert_allclose(probabilities(), want[1], rtol=1e-5, atol=1e-6)
            export_saved_model(models[2], tmp_path, MODEL_NAME)
            wait_for({1: "AVAILABLE", 2: "AVAILABLE"})
            latest = probabilities()
            np.testing.assert_allclose(latest, want[2], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(
                latest,
                ServingClient(rest.url, MODEL_NAME).predict(audio, visual).segment_probabilities,
            )
            np.testing.assert_array_equal(probabilities(label="stable"), probabilities(version=1))
            np.testing.assert_allclose(probabilities(version=1), want[1], rtol=1e-5, atol=1e-6)
            shutil.rmtree(tmp_path / MODEL_NAME / "1")
            wait_for({1: "END", 2: "AVAILABLE"})
            with pytest.raises(ModelNotFoundError, match=r"Specific\(psp_fully, 1\)"):
                probabilities(version=1)
            with pytest.raises(ModelNotFoundError, match=r"Specific\(psp_fully, 1\)"):
                probabilities(label="stable")
            np.testing.assert_array_equal(probabilities(), latest)
    finally:
        server.stop(grace=None)
        repository.stop()


@pytest.mark.slow  # a fresh process imports TensorFlow: ~15 s quiet, ~55 s on a busy machine
def test_serve_command_line_answers_grpc(export_dir, loaded_v1):
    base_path = str(export_dir / MODEL_NAME)
    args = ["--port", "0", "--grpc_port", "0", "--grpc_max_message_bytes", "3000000"]
    with serve_command("--model_base_path", base_path, *args) as process:
        first = process.stdout.readline()
        assert first.startswith(f"serving {MODEL_NAME} version(s) [1] at")
        line = process.stdout.readline()
        assert_documented_output("serve with gRPC", first + line)
        match = re.fullmatch(
            r"gRPC \(TF Serving's PredictionService, ModelService\) at (\S+)\n", line
        )
        assert match, line
        audio, visual = random_videos(2, seed=39)
        with GrpcClient(match.group(1), MODEL_NAME) as client:
            assert [s.state for s in client.status()] == ["AVAILABLE"]
            np.testing.assert_array_equal(
                client.predict(audio, visual).segment_probabilities,
                loaded_v1.predict("serving_default", {"audio": audio, "visual": visual})[
                    "segment_probabilities"
                ],
            )
            with pytest.raises(PayloadTooLargeError):  # 2 videos pass, 3 are over 3,000,000 B
                client.predict(*random_videos(3))


@pytest.mark.parametrize(
    "value",
    [
        random_videos(1)[1],
        np.arange(6, dtype=np.int32).reshape(2, 3),
        np.arange(6, dtype=">f8").reshape(3, 2)[::2],  # big-endian, not contiguous
        np.array([[True, False]]),
        np.float32(2.5),
        np.array([b"a", b"bc"], dtype=object),
    ],
    ids=["float32", "int32", "big-endian float64 view", "bool", "scalar", "bytes"],
)
def test_tensor_proto_has_tf_dtype_and_shape_and_reads_back(value):
    proto = tensor_proto(value)
    reference = tf.make_tensor_proto(value)
    assert proto.dtype == reference.dtype
    assert proto.tensor_shape == reference.tensor_shape
    # Values against the array itself: tf.make_tensor_proto copies big-endian bytes unswapped.
    np.testing.assert_array_equal(tf.make_ndarray(proto), value)
