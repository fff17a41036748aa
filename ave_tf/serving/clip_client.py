"""Sends decoded clips to the video-in model (``ave_tf.export_video``) over TF Serving's REST API.

    client = ServingClient("http://127.0.0.1:8501", "psp_video")
    inputs = clip_encoding.clip_inputs([decode.read_clip("clip.mp4")])
    outputs = predict_rest(client, inputs)   # segment_probabilities, segment_classes, ...

String inputs travel as TF Serving's binary JSON values, ``{"b64": "<base64>"}``: TF Serving
decodes such an object for any string (DT_STRING) input, whatever the input's name (the
``_bytes`` name suffix matters only for string *outputs*, which it then answers in b64). A gRPC
client's ``predict_outputs(inputs)`` (``ave_tf.serving.grpc_client``) takes the same ``inputs``
as binary ``TensorProto`` strings.
"""

import gzip
import json
from collections.abc import Mapping

import numpy as np

from ave_tf.serving import rest_format
from ave_tf.serving.client import ServingClient, ServingError


def json_values(array: np.ndarray):
    """An input array as JSON values: nested lists, each byte string as ``{"b64": ...}``."""
    array = np.asarray(array)
    if array.dtype.kind not in "OS":
        return array.tolist()
    return np.vectorize(rest_format.b64_value, otypes=[object])(array).tolist()


def predict_rest(
    client: ServingClient, inputs: Mapping[str, np.ndarray], signature: str | None = None
) -> dict[str, np.ndarray]:
    """The outputs of ``:predict`` on named input arrays, sent as one columnar request.

    Args:
        client: the server, model, version/label, gzip and retry settings.
        inputs: name -> batched array (byte strings as object arrays).
        signature: the signature name (default: the client's).
    """
    document = {
        "signature_name": signature or client.signature,
        "inputs": {name: json_values(array) for name, array in inputs.items()},
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if client.compress:
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    answer = client.request("POST", client.model_url() + ":predict", body, headers)
    try:
        return rest_format.response_outputs(answer)
    except ValueError as error:
        raise ServingError(200, f"unexpected answer: {error}", client.model_url()) from None


def signature_input_names(metadata: Mapping, signature: str = rest_format.DEFAULT_SIGNATURE):
    """Sorted input names of ``signature`` in a model's metadata (``GET .../metadata`` JSON)."""
    try:
        signature_defs = metadata["metadata"]["signature_def"]["signature_def"]
        return tuple(sorted(signature_defs[signature]["inputs"]))
    except (KeyError, TypeError):
        raise ValueError(f"the model's metadata has no signature {signature!r}") from None
