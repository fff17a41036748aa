"""A TF Serving gRPC client for the PSP models (PredictionService, ModelService).

    with GrpcClient("127.0.0.1:8500", "psp_fully") as client:
        result = client.predict(audio, visual)      # audio (B, 10, 128), visual (B, 10, 7, 7, 512)
        result.segment_classes                      # (B, 10) int
        client.status()                             # [ModelVersionStatus(version=1, ...)]

Inputs travel as binary `TensorProto`s (numbers as `tensor_content`, strings as
`string_val`, as `tf.make_tensor_proto` writes them), so a video's features are ~1 MB on the
wire instead of ~5 MB of JSON. Works against TF Serving (`tensorflow_model_server --port=8500`) and
against its local stand-in (`--grpc_port=8500`, docs/serving.md). A fault raises the REST client's
exception for the same fault (`ave_tf.serving.client`): INVALID_ARGUMENT and FAILED_PRECONDITION
`BadRequestError` (status 400), NOT_FOUND `ModelNotFoundError` (404), a message over the server's
limit `PayloadTooLargeError` (413), UNAVAILABLE, DEADLINE_EXCEEDED and a server at its concurrency
limit `ServerUnavailableError` (503/504), anything else
`ServingError` (500); `str(error)` names the gRPC code, the target and the server's message.

Unlike the REST client (NumPy, orjson, pybase64), this module imports TensorFlow: TF Serving's
protos (``tensorflow_serving.apis``) are built on TensorFlow's ``TensorProto`` and import it.
"""

from collections.abc import Mapping

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from ave_tf.inputs import InvalidInputError, check_inputs
from ave_tf.serving.client import (
    BadRequestError,
    ModelNotFoundError,
    ModelVersionStatus,
    PayloadTooLargeError,
    Prediction,
    ServerUnavailableError,
    ServingError,
    check_pin,
)
from ave_tf.serving.rest_format import DEFAULT_SIGNATURE

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
"""The largest message this client sends or accepts (gRPC's own default is 4 MiB)."""

_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT: (BadRequestError, 400),
    grpc.StatusCode.FAILED_PRECONDITION: (BadRequestError, 400),
    grpc.StatusCode.OUT_OF_RANGE: (BadRequestError, 400),
    grpc.StatusCode.NOT_FOUND: (ModelNotFoundError, 404),
    grpc.StatusCode.UNAVAILABLE: (ServerUnavailableError, 503),
    grpc.StatusCode.DEADLINE_EXCEEDED: (ServerUnavailableError, 504),
}
_AS_REST_JSON = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}
"""`json_format.MessageToDict` options that give the REST API's JSON."""


def tensor_proto(value) -> tensor_pb2.TensorProto:
    """`tf.make_tensor_proto(value)`; numeric arrays take a faster path (one copy of the
    little-endian values into `tensor_content`, ~3x faster for a video's visual features)."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(
        dtype=tf.dtypes.as_dtype(array.dtype).as_datatype_enum,
        tensor_content=array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(),
    )
    proto.tensor_shape.dim.extend(
        tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape
    )
    return proto


def error_for_rpc(error: grpc.RpcError, where: str) -> ServingError:
    """The `ServingError` subclass for a failed call; `where` names the target and method."""
    code, details = error.code(), error.details() or ""
    kind, status = _ERRORS.get(code, (ServingError, 500))
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        too_large = "larger than max" in details  # gRPC's own words for a message over the limit
        kind, status = (PayloadTooLargeError, 413) if too_large else (ServerUnavailableError, 503)
    failure = kind(status, details, where)
    failure.args = (f"{code.name} from {where}: {details}",)  # a gRPC error, not "HTTP 400"
    return failure


class GrpcClient:
    """Calls one model of a TF Serving (or its local stand-in's `--grpc_port`) gRPC endpoint.

    Args:
        target: `host:port`, e.g. `127.0.0.1:8500`.
        model_name: the model name, e.g. `psp_fully`.
        version: pin a version; exclusive with `label`.
        label: pin a version label.
        timeout: seconds per call (the call's gRPC deadline).
    """

    def __init__(
        self,
        target: str,
        model_name: str = "psp_fully",
        version: int | None = None,
        label: str | None = None,
        timeout: float = 30.0,
    ):
        check_pin(version, label)
        if not isinstance(target, str) or not target or "://" in target:
            raise ValueError(f"target must be host:port, e.g. 127.0.0.1:8500; got {target!r}")
        self.target = target
        self.model_name = model_name
        self.version = version
        self.label = label
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def model_spec(self, signature_name: str = "") -> model_pb2.ModelSpec:
        """The request's `ModelSpec`: name, pinned version or label, signature."""
        spec = model_pb2.ModelSpec(name=self.model_name, signature_name=signature_name)
        if self.version is not None:
            spec.version.value = int(self.version)
        elif self.label is not None:
            spec.version_label = self.label
        return spec

    def _call(self, method, request, name: str):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise error_for_rpc(error, f"grpc://{self.target} ({name} {self.model_name})") from None

    def predict_outputs(
        self, inputs: Mapping[str, np.ndarray], signature_name: str = DEFAULT_SIGNATURE
    ) -> dict[str, np.ndarray]:
        """Named output arrays of `signature_name` for named input arrays, sent as they are.

        String outputs (`class_names`) are object arrays of `bytes`, as `tf.make_ndarray`
        gives them. Arrays that cannot be a tensor raise `InvalidInputError` naming the input.
        """
        request = predict_pb2.PredictRequest(model_spec=self.model_spec(signature_name))
        for name, value in inputs.items():
            try:
                request.inputs[name].CopyFrom(tensor_proto(value))
            except (TypeError, ValueError) as error:
                raise InvalidInputError(f"input {name!r} is not a tensor: {error}") from None
        response = self._call(self._predictions.Predict, request, "Predict")
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def predict(self, audio, visual) -> Prediction:
        """Predictions for a batch: audio (B, 10, 128), visual (B, 10, 7, 7, 512) (checked)."""
        audio, visual = check_inputs(audio, visual)
        return Prediction.from_outputs(self.predict_outputs({"audio": audio, "visual": visual}))

    def metadata(self) -> dict:
        """The model's signature metadata, as the REST API's JSON (`GET .../metadata`)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=self.model_spec(), metadata_field=["signature_def"]
        )
        response = self._call(self._predictions.GetModelMetadata, request, "GetModelMetadata")
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        return {
            "model_spec": json_format.MessageToDict(response.model_spec, **_AS_REST_JSON),
            "metadata": {
                "signature_def": json_format.MessageToDict(signature_defs, **_AS_REST_JSON)
            },
        }

    def status(self) -> list[ModelVersionStatus]:
        """The model's versions and their states (ModelService.GetModelStatus)."""
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=self.model_spec())
        response = self._call(self._models.GetModelStatus, request, "GetModelStatus")
        document = json_format.MessageToDict(response, **_AS_REST_JSON)
        return [ModelVersionStatus.from_json(entry) for entry in document["model_version_status"]]

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "GrpcClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
