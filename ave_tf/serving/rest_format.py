"""TF Serving's REST predict format on the client side: named arrays to a request document,
an answer document back to arrays, and the JSON both sides write and read.

- row ("instances"): `{"signature_name": ..., "instances": [{"audio": ..., "visual": ...}, ...]}`
  answered by `{"predictions": [{"segment_classes": ..., ...}, ...]}`;
- columnar ("inputs"): `{"inputs": {"audio": [...], "visual": [...]}}` answered by
  `{"outputs": {"segment_classes": [...], ...}}`.

JSON goes through orjson (`loads`, `dumps`: NumPy arrays are written without `tolist()`);
binary values are `{"b64": ...}` (`b64_value`). The REST clients (`ave_tf.serving.client`,
`clip_client`) use this module; a server's reading of requests builds on it.
"""

import json
from collections.abc import Iterator, Mapping

import numpy as np
import orjson
import pybase64

ROW = "row"
COLUMNAR = "columnar"
FORMATS = (ROW, COLUMNAR)
DEFAULT_SIGNATURE = "serving_default"
BRIEF_CHARS = 200
"""The length `brief` cuts a JSON value's text to for error messages."""


def _json_pieces(value, depth: int) -> Iterator[str]:
    """Compact JSON text of `value` piece by piece; containers deeper than the brief show
    as `...` (a brief never needs them, and the walk stays shallow)."""
    if depth > BRIEF_CHARS:
        yield "..."
    elif isinstance(value, list):
        yield "["
        for index, item in enumerate(value):
            yield "," if index else ""
            yield from _json_pieces(item, depth + 1)
        yield "]"
    elif isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + json.dumps(str(key)[: BRIEF_CHARS + 1]) + ":"
            yield from _json_pieces(item, depth + 1)
        yield "}"
    elif isinstance(value, str):
        yield json.dumps(value[: BRIEF_CHARS + 1])
    else:
        yield json.dumps(value) if isinstance(value, int | float | None) else repr(value)


def brief(value) -> str:
    """A JSON value as compact text, cut to a readable length for error messages.

    Walks only as much of `value` as it shows, so a brief of a huge or deeply nested
    document costs as little as one of a small one.
    """
    text = ""
    for piece in _json_pieces(value, 0):
        text += piece
        if len(text) > BRIEF_CHARS:
            return text[:BRIEF_CHARS] + "...(truncated)"
    return text


def _has_non_finite_tokens(body: bytes) -> bool:
    return b"NaN" in body or b"Infinity" in body


def loads(body: bytes):
    """Parsed JSON. orjson does the work; only a body holding `NaN`/`Infinity` tokens (which
    TF Serving parses and orjson does not) goes through the standard library instead.

    Raises:
        ValueError: invalid JSON, nesting deeper than 1,024 levels or a number beyond a
            double (the message says which); `RecursionError` does not escape.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        if not _has_non_finite_tokens(body):
            raise
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("depth limit exceeded") from None


def _object_array_list(value):
    """orjson's fallback: object arrays (e.g. `{"b64": ...}` values) as nested lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(document) -> bytes:
    """Compact JSON of `document`; NumPy arrays and scalars are written directly (object
    arrays through `tolist()`).

    Floats are written in their shortest round-tripping form (float32 values as float32).
    """
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY, default=_object_array_list)


B64_KEY = "b64"
"""TF Serving's key for binary values of string inputs: `{"b64": "<base64>"}`."""


def b64_value(data) -> dict[str, str]:
    """`{"b64": "<base64 of data>"}`, TF Serving's JSON form of a binary string value
    (pybase64's SIMD encoder: ~40x the standard library's on 1 MB). `data`: bytes or any
    C-contiguous buffer (a NumPy array is encoded without a copy)."""
    return {B64_KEY: pybase64.b64encode_as_string(data)}


def predict_request_document(
    inputs: Mapping[str, np.ndarray],
    request_format: str = COLUMNAR,
    signature: str = DEFAULT_SIGNATURE,
) -> dict:
    """The request object for named, batched input arrays (client side), for `dumps`: its
    values are the (C-contiguous) arrays themselves."""
    if request_format not in FORMATS:
        raise ValueError(f"request_format must be one of {FORMATS}; got {request_format!r}")
    arrays = {name: np.ascontiguousarray(array) for name, array in inputs.items()}
    if request_format == COLUMNAR:
        return {"signature_name": signature, "inputs": arrays}
    sizes = {len(value) for value in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(
            f"inputs disagree on the batch size: { {k: len(v) for k, v in arrays.items()} }"
        )
    (batch,) = sizes
    return {
        "signature_name": signature,
        "instances": [{name: arrays[name][i] for name in arrays} for i in range(batch)],
    }


def response_outputs(doc: Mapping) -> dict[str, np.ndarray]:
    """Named output arrays from a `predictions` or `outputs` answer (client side).

    An answer with a single unnamed output is returned under the name `"output"`.
    """
    if "outputs" in doc:
        outputs = doc["outputs"]
        if isinstance(outputs, dict):
            return {name: np.asarray(value) for name, value in outputs.items()}
        return {"output": np.asarray(outputs)}
    if "predictions" in doc:
        predictions = doc["predictions"]
        if not isinstance(predictions, list):
            raise ValueError(f"'predictions' must be a list; got {brief(predictions)}")
        if predictions and all(isinstance(p, dict) for p in predictions):
            names = predictions[0].keys()
            return {name: np.asarray([p[name] for p in predictions]) for name in names}
        return {"output": np.asarray(predictions)}
    raise ValueError(f"answer has neither 'predictions' nor 'outputs': {brief(doc)}")
