"""TF Serving's gRPC API for one `ModelRepository`: PredictionService and ModelService.

    server = GrpcModelServer(("127.0.0.1", 8500), repository).start()
    # tensorflow.serving.PredictionService/{Predict,GetModelMetadata,Classify,Regress}
    # tensorflow.serving.ModelService/GetModelStatus

It answers the messages of the published `tensorflow-serving-api` protos and shares the
repository (versions, labels, hot reload) with the REST server beside it. Faults are answered
with TF Serving's status codes and wording:

- INVALID_ARGUMENT: a missing `model_spec`, an unknown version label, missing, extra or
  misnamed inputs, a wrong dtype or shape, a tensor whose values do not match its shape,
  inputs that disagree on the batch size, non-finite values, an unknown `output_filter` name,
  a request that is not a valid protobuf at all, a Classify/Regress call (this model has a
  predict signature only), a bad `metadata_field`.
- NOT_FOUND: an unknown model or version.
- FAILED_PRECONDITION: an unknown signature (`Serving signature key "x" not found.`).
- RESOURCE_EXHAUSTED: a request over `max_message_bytes`, or more than
  `max_concurrent_rpcs` requests at once (gRPC answers both itself).

Stricter than TF Serving, so that work and memory per request are bounded by its size: a
tensor must carry exactly as many values as its shape says (TF Serving repeats the last value
to fill a short list, so a few bytes could ask for gigabytes), dimensions must be the
signature's, a batch must hold at least one video, and floats must be finite (as the REST
stand-in). Numeric outputs are sent as `tensor_content` (TF Serving's default fills the typed
`*_val` fields; `tf.make_ndarray` reads both).
"""

import concurrent.futures
import logging
import math
import socket
from collections.abc import Callable

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
    regression_pb2,
)

from ave_tf.serving.rest_format import DEFAULT_SIGNATURE
from tfserving_standin.rest_api import RestError, clipped, non_finite_refusal

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Default request size limit: 64 videos of binary features (1.0 MB each)."""
DEFAULT_WORKERS = 4
"""Threads running requests; more requests wait for one (up to `max_concurrent_rpcs`)."""
DEFAULT_MAX_BATCH_SIZE = 32
"""Videos one request may hold (the REST server's `Limits.max_batch_size`); more get
RESOURCE_EXHAUSTED before any value is decoded."""
DEFAULT_MAX_CONCURRENT_RPCS = 64
"""Requests running or waiting; more are answered RESOURCE_EXHAUSTED at once."""
IDLE_CONNECTION_SECONDS = 300
"""A connection without any call for this long is closed by the server."""

_SIGNATURE_DEF = "signature_def"
_HTTP_TO_CODE = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}
"""The typed repeated field holding a tensor's values when `tensor_content` is empty."""


class RpcFault(Exception):
    """A request fault with its gRPC status code and TF Serving's message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid_argument(message: str) -> RpcFault:
    return RpcFault(grpc.StatusCode.INVALID_ARGUMENT, message)


def dtype_name(dtype: int) -> str:
    """TensorFlow's name of a `DataType` value (`DT_FLOAT` -> "float")."""
    try:
        return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()
    except ValueError:
        return f"unknown dtype {dtype}"


def _shape_text(dims) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


def decode_tensor(
    name: str,
    proto: tensor_pb2.TensorProto,
    info,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> np.ndarray:
    """The NumPy array of input `name`, checked against the signature's `TensorInfo`.

    Dtype, rank, fixed dimensions and the batch size (at most `max_batch_size`) are checked
    before anything is allocated, and the number of values must fill the shape exactly
    (counted before any is decoded), so the array is never larger than the message and the
    work never beyond `max_batch_size` examples. DT_STRING inputs become object arrays of
    `bytes`.

    Raises:
        RpcFault: INVALID_ARGUMENT naming the input; RESOURCE_EXHAUSTED beyond the batch size.
    """
    if proto.dtype != info.dtype:
        raise invalid_argument(
            f"Expected input {name} to be {dtype_name(info.dtype)} "
            f"but get {dtype_name(proto.dtype)}."
        )
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument(f"tensor parsing error: {name} (the shape has an unknown rank)")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(size < 0 for size in dims):
        raise invalid_argument(
            f"tensor parsing error: {name} (negative dimension in {_shape_text(dims)})"
        )
    expected = [d.size for d in info.tensor_shape.dim]
    if not info.tensor_shape.unknown_rank and (
        len(dims) != len(expected)
        or any(want >= 0 and want != have for want, have in zip(expected, dims, strict=True))
    ):
        raise invalid_argument(
            f"Input '{name}' has shape {_shape_text(dims)} but the signature expects "
            f"{_shape_text(expected)}"
        )
    if dims and dims[0] > max_batch_size:
        raise RpcFault(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"Input '{name}' holds {dims[0]} examples, more than the {max_batch_size} this "
            "server takes at once; send fewer examples per request",
        )
    count = math.prod(dims)
    dtype = np.dtype(tf.dtypes.as_dtype(info.dtype).as_numpy_dtype)
    field = _VALUE_FIELDS.get(proto.dtype)
    if proto.dtype == types_pb2.DT_STRING:
        values = proto.string_val
        if len(values) != count:
            raise invalid_argument(
                f"tensor parsing error: {name} holds {len(values)} strings; its shape "
                f"{_shape_text(dims)} needs {count}"
            )
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(dims)
    content = proto.tensor_content  # read once: every read copies the bytes
    if content:
        if len(content) != count * dtype.itemsize:
            raise invalid_argument(
                f"tensor parsing error: {name} has {len(content)} bytes of "
                f"tensor_content; its shape {_shape_text(dims)} needs "
                f"{count * dtype.itemsize} ({count} x {dtype_name(proto.dtype)})"
            )
        return np.frombuffer(content, dtype=dtype.newbyteorder("<")).reshape(dims)
    values = getattr(proto, field) if field else ()
    if len(values) != count:
        raise invalid_argument(
            f"tensor parsing error: {name} holds {len(values)} values; its shape "
            f"{_shape_text(dims)} needs {count}"
        )
    return np.fromiter(values, dtype=dtype, count=count).reshape(dims)  # no list in between


def decode_inputs(
    request: predict_pb2.PredictRequest,
    signature_def,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> dict[str, np.ndarray]:
    """The request's input arrays, checked against the signature (TF Serving's wording first).

    Raises:
        RpcFault: INVALID_ARGUMENT; RESOURCE_EXHAUSTED beyond `max_batch_size` examples.
    """
    sent, wanted = set(request.inputs), set(signature_def.inputs)

    def names(texts) -> str:
        return ",".join(clipped(text) for text in sorted(texts))

    if len(sent) != len(wanted):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({{{names(sent)}}}) != len({{{names(wanted)}}}). "
            f"Sent extra: {{{names(sent - wanted)}}}. "
            f"Missing but required: {{{names(wanted - sent)}}}."
        )
    extra = sorted(sent - wanted)
    if extra:
        raise invalid_argument(
            f"input tensor alias not found in signature: {clipped(extra[0])}. "
            f"Inputs expected to be in the set {{{','.join(sorted(wanted))}}}."
        )
    arrays = {
        name: decode_tensor(name, request.inputs[name], signature_def.inputs[name], max_batch_size)
        for name in sorted(wanted)
    }
    batch_sizes = {name: array.shape[0] for name, array in arrays.items() if array.ndim}
    if len(set(batch_sizes.values())) > 1:
        sizes = ", ".join(f"{name} has {size}" for name, size in sorted(batch_sizes.items()))
        raise invalid_argument(f"Inputs disagree on the batch size: {sizes}")
    if 0 in batch_sizes.values():
        raise invalid_argument("The batch is empty: the inputs hold no videos")
    for name, array in arrays.items():
        refusal = non_finite_refusal(name, array)
        if refusal:
            raise invalid_argument(refusal)
    return arrays


def output_names(request: predict_pb2.PredictRequest, signature_def) -> list[str]:
    """The outputs to answer: `output_filter` (checked) or every output of the signature."""
    names = list(request.output_filter)
    for name in names:
        if name not in signature_def.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {clipped(name)} Outputs expected "
                f"to be in the set {{{','.join(sorted(signature_def.outputs))}}}."
            )
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise invalid_argument(f"duplicate output tensor alias: {clipped(duplicate)}")
    return names or sorted(signature_def.outputs)


def encode_tensor(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A TensorProto of an output array (numbers as `tensor_content`, strings as `string_val`)."""
    return tf.make_tensor_proto(array)


class _Servicer:
    """The RPC methods; each takes a parsed request (None when unparseable) and returns the
    response or raises `RpcFault` / `RestError`."""

    def __init__(self, repository, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE):
        self.repository = repository
        self.max_batch_size = max_batch_size

    def _resolve(self, request):
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        choice = spec.WhichOneof("version_choice")
        return self.repository.resolve(
            spec.name,
            spec.version.value if choice == "version" else None,
            spec.version_label if choice == "version_label" else None,
        )

    def _signature(self, model, request) -> str:
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature not in model.inputs:
            raise RpcFault(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{clipped(signature)}" not found.',
            )
        return signature

    def predict(self, request, context) -> predict_pb2.PredictResponse:
        model = self._resolve(request)
        signature = self._signature(model, request)
        signature_def = model.signature_defs[signature]
        arrays = decode_inputs(request, signature_def, self.max_batch_size)
        names = output_names(request, signature_def)
        if not context.is_active():  # the client gave up while the request waited
            raise RpcFault(grpc.StatusCode.CANCELLED, "The client cancelled the request")
        outputs = model.predict(signature, arrays)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.repository.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = signature
        for name in names:
            response.outputs[name].CopyFrom(encode_tensor(outputs[name]))
        return response

    def _refuse_method(self, request, kind: str, method: str):
        """Classify/Regress: TF Serving's answer for a model with a predict signature only."""
        model = self._resolve(request)
        signature = self._signature(model, request)
        raise invalid_argument(
            f"Expected {kind} signature method_name to be tensorflow/serving/{method}. "
            f"Was: {model.signature_defs[signature].method_name}"
        )

    def classify(self, request, context):
        self._refuse_method(request, "classification", "classify")

    def regress(self, request, context):
        self._refuse_method(request, "regression", "regress")

    def get_model_metadata(self, request, context):
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in request.metadata_field:
            if field != _SIGNATURE_DEF:
                raise invalid_argument(f"Metadata field {clipped(field)} is not supported")
        model = self._resolve(request)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in model.signature_defs.items():
            signature_defs.signature_def[name].CopyFrom(signature_def)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.repository.name
        response.model_spec.version.value = model.version
        response.metadata[_SIGNATURE_DEF].Pack(signature_defs)
        return response

    def get_model_status(self, request, context):
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        choice = spec.WhichOneof("version_choice")
        document = self.repository.status(
            spec.name,
            spec.version.value if choice == "version" else None,
            spec.version_label if choice == "version_label" else None,
        )
        return json_format.ParseDict(document, get_model_status_pb2.GetModelStatusResponse())


_MAX_DETAILS_CHARS = 2000
"""Status details beyond this are cut (names in them are cut to 200 characters already): a
client refuses details over its metadata limit (16 KiB) as RESOURCE_EXHAUSTED."""

_UNPARSEABLE = object()
"""What `_unary`'s parser returns for bytes that are not the request message."""


def _unary(method: Callable, request_type, response_type) -> grpc.RpcMethodHandler:
    """A handler that parses the request itself (a garbage message is INVALID_ARGUMENT, not
    gRPC's INTERNAL) and answers every fault with its status code."""

    def parse(data: bytes):
        try:
            return request_type.FromString(data)
        except DecodeError:
            return _UNPARSEABLE  # not None: gRPC answers None with INTERNAL

    def handle(request, context):
        try:
            if request is _UNPARSEABLE:
                raise invalid_argument(
                    f"Could not parse the request as a {request_type.DESCRIPTOR.full_name}"
                )
            return method(request, context)
        except RpcFault as fault:
            context.abort(fault.code, clipped(fault.message, _MAX_DETAILS_CHARS))
        except RestError as error:  # the repository's TF Serving errors, by their HTTP status
            code = _HTTP_TO_CODE.get(error.status, grpc.StatusCode.INTERNAL)
            context.abort(code, clipped(error.message, _MAX_DETAILS_CHARS))
        except Exception as error:  # keep serving whatever went wrong
            logging.exception("gRPC %s failed", request_type.DESCRIPTOR.name)
            message = f"{type(error).__name__}: {error}"
            context.abort(grpc.StatusCode.INTERNAL, clipped(message, _MAX_DETAILS_CHARS))

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=parse, response_serializer=response_type.SerializeToString
    )


def _handlers(servicer: _Servicer) -> list[grpc.GenericRpcHandler]:
    prediction = prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]
    models = model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]
    return [
        grpc.method_handlers_generic_handler(
            prediction.full_name,
            {
                "Predict": _unary(
                    servicer.predict, predict_pb2.PredictRequest, predict_pb2.PredictResponse
                ),
                "GetModelMetadata": _unary(
                    servicer.get_model_metadata,
                    get_model_metadata_pb2.GetModelMetadataRequest,
                    get_model_metadata_pb2.GetModelMetadataResponse,
                ),
                "Classify": _unary(
                    servicer.classify,
                    classification_pb2.ClassificationRequest,
                    classification_pb2.ClassificationResponse,
                ),
                "Regress": _unary(
                    servicer.regress,
                    regression_pb2.RegressionRequest,
                    regression_pb2.RegressionResponse,
                ),
            },
        ),
        grpc.method_handlers_generic_handler(
            models.full_name,
            {
                "GetModelStatus": _unary(
                    servicer.get_model_status,
                    get_model_status_pb2.GetModelStatusRequest,
                    get_model_status_pb2.GetModelStatusResponse,
                ),
            },
        ),
    ]


def _check_bindable(host: str, port: int) -> None:
    """Raises the OSError of binding `(host, port)` (e.g. "Address already in use"), which
    gRPC reports only as a log line on stderr and a bare failure."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
        try:
            probe.bind((host, port))
        except OSError as error:
            shown = f"[{host}]" if ":" in host else host
            raise OSError(
                error.errno, f"cannot bind gRPC to {shown}:{port}: {error.strerror}"
            ) from None


class GrpcModelServer:
    """A grpcio server answering TF Serving's gRPC API for one `ModelRepository`.

    Binds at construction (an address in use raises OSError); `start()` serves in gRPC's
    threads, `stop()` ends it.

    Args:
        address: `(host, port)`; port 0 picks a free port (see `port`).
        repository: the model to serve (shared with the REST server; call its `start()`).
        max_message_bytes: larger requests (and responses) are refused RESOURCE_EXHAUSTED.
        workers: threads running requests.
        max_concurrent_rpcs: requests running or waiting; more get RESOURCE_EXHAUSTED.
        max_batch_size: examples one request may hold; more get RESOURCE_EXHAUSTED.
    """

    def __init__(
        self,
        address: tuple[str, int],
        repository,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        workers: int = DEFAULT_WORKERS,
        max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    ):
        self.repository = repository
        self.host = address[0]
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="grpc"),
            handlers=_handlers(_Servicer(repository, max_batch_size)),
            maximum_concurrent_rpcs=max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_connection_idle_ms", IDLE_CONNECTION_SECONDS * 1000),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not a shared port
            ],
        )
        host = f"[{self.host}]" if ":" in self.host else self.host
        _check_bindable(self.host, address[1])
        try:
            self.port = self._server.add_insecure_port(f"{host}:{address[1]}")
        except RuntimeError as error:  # grpcio >= 1.49 raises; older versions return 0
            raise OSError(f"cannot bind gRPC to {host}:{address[1]}: {error}") from None
        if not self.port:
            raise OSError(f"cannot bind gRPC to {host}:{address[1]}")
        self.target = f"{host}:{self.port}"

    _started = False

    def start(self) -> "GrpcModelServer":
        self._server.start()
        self._started = True
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stops accepting calls; running ones get `grace` seconds to finish. The port is
        released also when the server never started (gRPC releases a bound port only by
        stopping a started server)."""
        if not self._started:
            self.start()
        self._server.stop(grace).wait()
