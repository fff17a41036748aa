"""Hypothesis fuzzing of the gRPC server with malformed requests (127.0.0.1, fixed seed).

Every generated request is malformed by construction (wrong dtypes, shapes, dims up to 2^63,
garbage `tensor_content`, short value lists, non-finite values, missing, extra or renamed
inputs, unknown models, versions, labels, signatures, outputs and metadata fields, bytes that
are no protobuf at all). Each must be answered within the call deadline with a client-fault
code (never OK, INTERNAL or UNKNOWN), and the server must answer a valid request after each
batch with unchanged outputs.
"""

import collections
import time

import grpc
import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import MODEL_NAME, predict_request, random_videos
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

PREDICT_EXAMPLES = 500
OTHER_EXAMPLES = 150  # raw bytes, metadata and status requests
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
CALL_SECONDS = 30  # a call not answered by then is a hang
CLIENT_FAULTS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
OUTPUTS = ("class_names", "is_event", "segment_classes", "segment_probabilities", "video_class")
SHAPES = {"audio": [1, 10, 128], "visual": [1, 10, 7, 7, 512]}
FUZZ_SETTINGS = settings(
    derandomize=True,  # a fixed sequence of examples: the same requests in every run
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

names = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
int64s = st.integers(-(2**63), 2**63 - 1)
dims = st.lists(
    st.one_of(st.integers(-3, 3), st.sampled_from([7, 10, 49, 128, 512]), int64s), max_size=8
)


def _base_request() -> predict_pb2.PredictRequest:
    return predict_request(*random_videos(1, seed=41))


BASE = _base_request()


def _fault_model_spec(draw, request):
    choice = draw(st.sampled_from(["missing", "name", "version", "label", "signature"]))
    spec = request.model_spec
    if choice == "missing":
        request.ClearField("model_spec")
    elif choice == "name":
        spec.name = draw(names.filter(lambda name: name != MODEL_NAME))
    elif choice == "version":
        spec.version.value = draw(int64s.filter(lambda version: version != 1))
    elif choice == "label":
        spec.version_label = draw(names.filter(bool))  # the server has no labels; "" is none
    else:
        spec.signature_name = draw(names.filter(lambda n: n not in ("", "serving_default")))


def _fault_inputs(draw, request):
    choice = draw(st.sampled_from(["drop", "extra", "rename"]))
    present = sorted(set(request.inputs) & set(SHAPES))  # never undo an extra input
    new_name = draw(names.filter(lambda name: name not in SHAPES))
    if choice == "drop" and present:
        request.inputs.pop(draw(st.sampled_from(present)))
    elif choice == "rename" and present:
        request.inputs[new_name].CopyFrom(request.inputs.pop(draw(st.sampled_from(present))))
    else:
        request.inputs[new_name].CopyFrom(BASE.inputs["audio"])


def _fault_tensor(draw, request):
    present = sorted(set(request.inputs) & set(SHAPES))
    if not present:
        request.inputs["audio"].dtype = types_pb2.DT_STRING  # still missing visual
        return
    name = draw(st.sampled_from(present))
    tensor = request.inputs[name]
    size = len(BASE.inputs[name].tensor_content)
    choice = draw(
        st.sampled_from(
            ["dtype", "dims", "unknown_rank", "content", "values", "strings", "non_finite", "batch"]
        )
    )
    if choice == "dtype":
        known = [v for v in types_pb2.DataType.values() if v != types_pb2.DT_FLOAT]
        tensor.dtype = draw(
            st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1)).filter(
                lambda dtype: dtype != types_pb2.DT_FLOAT
            )
        )
    elif choice == "dims":
        new_dims = draw(dims.filter(lambda d: d != SHAPES[name]))
        del tensor.tensor_shape.dim[:]
        for d in new_dims:
            tensor.tensor_shape.dim.add(size=d)
    elif choice == "unknown_rank":
        tensor.tensor_shape.unknown_rank = True
    elif choice == "content":
        tensor.tensor_content = draw(
            st.one_of(
                st.binary(max_size=4096),
                st.integers(1, 7).map(lambda k: bytes(size + k)),
                st.integers(1, 7).map(lambda k: bytes(size - k)),
            ).filter(lambda content: len(content) not in (0, size))
        )
    elif choice == "values":
        tensor.ClearField("tensor_content")
        tensor.float_val.extend(draw(st.lists(st.floats(width=32), max_size=64)))
    elif choice == "strings":
        tensor.ClearField("tensor_content")
        tensor.string_val.extend(draw(st.lists(st.binary(max_size=16), max_size=4)))
    elif choice == "non_finite":
        values = np.frombuffer(BASE.inputs[name].tensor_content, np.float32).copy()
        values[draw(st.integers(0, values.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
        tensor.tensor_content = values.tobytes()
    else:  # a batch size the other input does not have (two batch faults must not agree)
        taken = {
            request.inputs[other].tensor_shape.dim[0].size
            for other in present
            if other != name and request.inputs[other].tensor_shape.dim
        }
        batch = draw(st.integers(2, 4).filter(lambda size: size not in taken))
        tensor.CopyFrom(tf.make_tensor_proto(random_videos(batch)[0 if name == "audio" else 1]))


def _fault_outputs(draw, request):
    if draw(st.booleans()):
        request.output_filter.extend(draw(st.lists(names, min_size=1, max_size=3)))
        request.output_filter.append(draw(names.filter(lambda name: name not in OUTPUTS)))
    else:
        duplicate = draw(st.sampled_from(OUTPUTS))
        request.output_filter.extend([duplicate, duplicate])


FAULTS = [_fault_model_spec, _fault_inputs, _fault_tensor, _fault_tensor, _fault_outputs]


class Malformed:
    """A generated request; its repr (what Hypothesis prints for a failure) stays short."""

    def __init__(self, request: bytes):
        self.request = request

    def __repr__(self) -> str:
        message = predict_pb2.PredictRequest.FromString(self.request)
        for tensor in message.inputs.values():
            if tensor.tensor_content:
                tensor.tensor_content = tensor.tensor_content[:16]
        return f"Malformed({message} (tensor_content cut to 16 bytes))"


@st.composite
def malformed_predict_requests(draw) -> Malformed:
    request = predict_pb2.PredictRequest()
    request.CopyFrom(BASE)
    for fault in draw(st.lists(st.sampled_from(FAULTS), min_size=1, max_size=3)):
        fault(draw, request)
    return Malformed(request.SerializeToString())


@st.composite
def malformed_other_requests(draw):
    """(method, serialized request) for raw bytes, GetModelMetadata and GetModelStatus."""
    kind = draw(st.sampled_from(["bytes", "metadata", "status"]))
    if kind == "bytes":
        method = draw(st.sampled_from(["Predict", "GetModelMetadata", "Classify", "Regress"]))
        return f"/tensorflow.serving.PredictionService/{method}", draw(st.binary(max_size=2048))
    if kind == "metadata":
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = MODEL_NAME
        request.metadata_field.append("signature_def")
        fault = draw(st.sampled_from(["spec", "no field", "bad field"]))
        if fault == "spec":
            _fault_model_spec(draw, request)
            if request.HasField("model_spec") and request.model_spec.signature_name:
                request.model_spec.name = "not_" + MODEL_NAME  # signatures do not matter here
        elif fault == "no field":
            request.ClearField("metadata_field")
        else:
            request.metadata_field.append(draw(names.filter(lambda f: f != "signature_def")))
        return "/tensorflow.serving.PredictionService/GetModelMetadata", request.SerializeToString()
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL_NAME
    _fault_model_spec(draw, request)
    if request.HasField("model_spec") and request.model_spec.signature_name:
        request.model_spec.version.value = draw(st.integers(2, 2**63 - 1))
    return "/tensorflow.serving.ModelService/GetModelStatus", request.SerializeToString()


def _assert_healthy(channel, loaded_v1):
    audio, visual = random_videos(1, seed=42)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request(audio, visual), timeout=CALL_SECONDS)
    np.testing.assert_array_equal(
        tf.make_ndarray(response.outputs["segment_probabilities"]),
        loaded_v1.predict("serving_default", {"audio": audio, "visual": visual})[
            "segment_probabilities"
        ],
    )
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": MODEL_NAME}),
        timeout=CALL_SECONDS,
    )
    assert [entry.version for entry in status.model_version_status] == [1]


def _resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def _call(call, request, codes, latencies) -> None:
    start, details = time.monotonic(), ""
    try:
        call(request, timeout=CALL_SECONDS)
        code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        code = error.code()
        details = error.details()
    latencies.append(time.monotonic() - start)
    codes[code.name] += 1
    assert code in CLIENT_FAULTS, (code, details)


def test_fuzzed_predict_requests_get_client_fault_codes(grpc_server, loaded_v1):
    codes, latencies = collections.Counter(), []
    with grpc.insecure_channel(grpc_server.target) as channel:
        predict = channel.unary_unary(PREDICT_METHOD)  # bytes in, bytes out
        _assert_healthy(channel, loaded_v1)
        before = _resident_mib()

        @settings(FUZZ_SETTINGS, max_examples=PREDICT_EXAMPLES)
        @given(malformed=malformed_predict_requests())
        def one(malformed):
            _call(predict, malformed.request, codes, latencies)

        one()
        grown = _resident_mib() - before
        _assert_healthy(channel, loaded_v1)
    print(
        f"\n{sum(codes.values())} malformed Predict requests: {dict(sorted(codes.items()))}; "
        f"p50 {np.percentile(latencies, 50) * 1e3:.1f} ms, "
        f"p99 {np.percentile(latencies, 99) * 1e3:.1f} ms, "
        f"max {max(latencies) * 1e3:.0f} ms; resident memory {grown:+.0f} MiB"
    )
    assert sum(codes.values()) >= PREDICT_EXAMPLES
    assert grown < 256


def test_fuzzed_bytes_metadata_and_status_requests_get_client_fault_codes(grpc_server, loaded_v1):
    codes, latencies = collections.Counter(), []
    with grpc.insecure_channel(grpc_server.target) as channel:
        calls = {}

        def call(method):
            if method not in calls:
                calls[method] = channel.unary_unary(method)  # bytes in, bytes out
            return calls[method]

        @settings(FUZZ_SETTINGS, max_examples=OTHER_EXAMPLES)
        @given(method_and_request=malformed_other_requests())
        def one(method_and_request):
            method, request = method_and_request
            _call(call(method), request, codes, latencies)

        one()
        _assert_healthy(channel, loaded_v1)
    print(f"\n{sum(codes.values())} malformed other requests: {dict(sorted(codes.items()))}")
    assert sum(codes.values()) >= OTHER_EXAMPLES
