"""TF Serving's REST predict format: JSON request bodies to NumPy inputs, outputs back to JSON.

Both the local server (`ave_tf.serving.server`) and the client (`ave_tf.serving.client`) use
these functions, so the two sides agree on one reading of the format:

- row ("instances"): `{"signature_name": ..., "instances": [{"audio": ..., "visual": ...}, ...]}`
  answered by `{"predictions": [{"segment_classes": ..., ...}, ...]}`;
- columnar ("inputs"): `{"inputs": {"audio": [...], "visual": [...]}}` answered by
  `{"outputs": {"segment_classes": [...], ...}}`.

Errors are `RestError`s carrying the HTTP status and a message worded like TF Serving's
(`tensorflow_serving/util/json_tensor.cc`), so clients that match on them see the same text.
Unlike TF Serving, non-finite input values (NaN, Infinity) are refused with a 400: the model's
answer to them is meaningless, and refusing them says so at the door.
"""

import base64
import binascii
import dataclasses
import json
from collections.abc import Mapping

import numpy as np

ROW = "row"
COLUMNAR = "columnar"
FORMATS = (ROW, COLUMNAR)
DEFAULT_SIGNATURE = "serving_default"
_BRIEF_CHARS = 200


class RestError(Exception):
    """A request fault with its HTTP status; `message` is what goes into `{"error": ...}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def invalid_argument(message: str) -> RestError:
    """TF Serving's INVALID_ARGUMENT, HTTP 400."""
    return RestError(400, message)


def not_found(message: str) -> RestError:
    """TF Serving's NOT_FOUND, HTTP 404."""
    return RestError(404, message)


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """An input of a signature: `shape` has None for unknown sizes; `dtype` a NumPy dtype."""

    shape: tuple[int | None, ...]
    dtype: np.dtype
    type_name: str = "float"

    def shape_text(self) -> str:
        return "[" + ",".join("-1" if d is None else str(d) for d in self.shape) + "]"


def brief(value) -> str:
    """A JSON value as text, cut to a readable length for error messages."""
    try:
        text = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _BRIEF_CHARS else text[:_BRIEF_CHARS] + "...(truncated)"


def parse_json(body: bytes) -> dict:
    """The request document; empty, invalid or non-object JSON is a 400 as in TF Serving."""
    if not body or not body.strip():
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except UnicodeDecodeError as error:
        raise invalid_argument(f"JSON Parse error: Invalid encoding in string. ({error})") from None
    except json.JSONDecodeError as error:
        raise invalid_argument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {brief(doc)} Is not object")
    return doc


def signature_name(doc: Mapping) -> str:
    """The requested signature (default `serving_default`)."""
    name = doc.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {brief(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name or DEFAULT_SIGNATURE


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, str):
        return "String"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    return "Number"


def _dense_shape(value) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _check_leaves(value, shape, level, spec: TensorSpec) -> None:
    """Walks `value` like TF Serving's FillTensorProto and raises on the first fault."""
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid_argument(
                f"JSON Value: {brief(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {len(shape)}"
            )
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number:
            raise invalid_argument(
                f"JSON Value: {brief(value)} Type: {_json_type(value)} "
                f"is not of expected type: {spec.type_name}"
            )
        return
    if level >= len(shape):
        raise invalid_argument(
            f"Encountered list at unexpected level: {level} expected < {len(shape)}"
        )
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _check_leaves(item, shape, level + 1, spec)


def string_array(value, spec: TensorSpec) -> np.ndarray:
    """A JSON value for a string (DT_STRING) input as an object array of bytes, read as TF
    Serving reads it: every leaf is a JSON string (its UTF-8 bytes) or a binary value
    ``{"b64": "<base64>"}`` (decoded; TF Serving does this for any string input, whatever its
    name). A malformed or undecodable b64 value is a 400 in TF Serving's words."""
    shape = _dense_shape(value)
    leaves = []

    def walk(item, level):
        if isinstance(item, list):
            if level >= len(shape) or len(item) != shape[level]:
                raise invalid_argument(
                    f"JSON Value: {brief(item)} is not a dense tensor of the shape "
                    f"[{','.join(map(str, shape))}] its first elements give"
                )
            for element in item:
                walk(element, level + 1)
        elif level != len(shape):
            raise invalid_argument(
                f"JSON Value: {brief(item)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {len(shape)}"
            )
        elif isinstance(item, str):
            leaves.append(item.encode("utf-8"))
        elif isinstance(item, dict):
            if set(item) != {"b64"} or not isinstance(item["b64"], str):
                raise invalid_argument(
                    f"JSON Value: {brief(item)} not formatted correctly for base64 data"
                )
            try:
                leaves.append(base64.b64decode(item["b64"], validate=True))
            except (binascii.Error, ValueError):
                raise invalid_argument("Unable to base64 decode") from None
        else:
            raise invalid_argument(
                f"JSON Value: {brief(item)} Type: {_json_type(item)} "
                f"is not of expected type: {spec.type_name}"
            )

    walk(value, 0)
    array = np.empty(len(leaves), dtype=object)
    array[:] = leaves
    return array.reshape(shape)


def to_array(value, spec: TensorSpec, *, strict: bool = False) -> np.ndarray:
    """A JSON value (nested lists of numbers) as a dense array of `spec.dtype`.

    The fast path lets NumPy build the array; `strict` (or any irregularity NumPy reports)
    walks the value to name the first offending element the way TF Serving does. Booleans
    mixed with numbers are only caught in strict mode (callers turn it on when the raw body
    contains `true`/`false`).
    """
    if spec.dtype.kind in "OS":
        return string_array(value, spec)
    if strict:
        _check_leaves(value, _dense_shape(value), 0, spec)
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        _check_leaves(value, _dense_shape(value), 0, spec)
        raise invalid_argument(
            f"JSON Value: {brief(value)} is not a dense numeric tensor"
        ) from None
    if array.dtype.kind not in "iuf":
        _check_leaves(value, _dense_shape(value), 0, spec)
        raise invalid_argument(
            f"JSON Value: {brief(value)} is not of expected type: {spec.type_name}"
        )
    if np.issubdtype(spec.dtype, np.floating):
        with np.errstate(over="ignore", invalid="ignore"):
            converted = array.astype(spec.dtype)
        lossy = np.isfinite(array) & ~np.isfinite(converted)
        if lossy.any():
            bad = float(array[tuple(np.argwhere(lossy)[0])])
            raise invalid_argument(
                f"Cannot convert JSON value: {bad!r} to {spec.type_name} without loss of precision."
            )
        return converted
    if array.dtype.kind == "f":
        raise invalid_argument(
            f"JSON Value: {brief(value)} Type: Number is not of expected type: {spec.type_name}"
        )
    return array.astype(spec.dtype)


def _check_input(name: str, array: np.ndarray, spec: TensorSpec) -> None:
    got = "[" + ",".join(str(d) for d in array.shape) + "]"
    if array.ndim != len(spec.shape) or any(
        want is not None and want != have
        for want, have in zip(spec.shape, array.shape, strict=True)
    ):
        raise invalid_argument(
            f"Input '{name}' has shape {got} but the signature expects {spec.shape_text()}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = ",".join(str(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise invalid_argument(
            f"Input '{name}' has a non-finite value (NaN or Infinity) at index [{index}]; "
            "this model accepts finite numbers only"
        )


def _row_inputs(doc: Mapping, specs: Mapping[str, TensorSpec], strict: bool) -> dict:
    instances = doc["instances"]
    if not isinstance(instances, list):
        raise invalid_argument(
            f"JSON Value: {brief(doc)} Excepting 'instances' to be an list/array"
        )
    if not instances:
        raise invalid_argument(f"JSON Value: {brief(doc)} No values in 'instances' array")
    names = sorted(specs)
    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    columns = {name: [] for name in names}
    for index, item in enumerate(instances):
        if not isinstance(item, dict):
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        for key in item:
            if key not in specs:
                raise invalid_argument(
                    f"Failed to process element: {index} key: {key} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {key}"
                )
        if set(item) != set(names):
            raise invalid_argument(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{brief(item)} keys must be equal to: {','.join(names)}"
            )
        for name in names:
            try:
                array = to_array(item[name], specs[name], strict=strict)
            except RestError as error:
                raise invalid_argument(
                    f"Failed to process element: {index} key: {name} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: {error.message}"
                ) from None
            if columns[name] and columns[name][0].shape != array.shape:
                first = "[" + ",".join(str(d) for d in columns[name][0].shape) + "]"
                got = "[" + ",".join(str(d) for d in array.shape) + "]"
                raise invalid_argument(
                    f"Failed to process element: {index} key: {name} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: Expecting shape {first} but got: {got}"
                )
            columns[name].append(array)
    return {name: np.stack(arrays) for name, arrays in columns.items()}


def _columnar_inputs(doc: Mapping, specs: Mapping[str, TensorSpec], strict: bool) -> dict:
    inputs = doc["inputs"]
    if not isinstance(inputs, dict):
        raise invalid_argument(
            "inputs is a plain value/list, but expecting an object as multiple input "
            "tensors required as per tensorinfo_map"
        )
    arrays = {}
    for name in sorted(specs):
        if name not in inputs:
            unknown = sorted(set(inputs) - set(specs))
            hint = f" (got unknown input(s): {', '.join(unknown)})" if unknown else ""
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.{hint}")
        try:
            arrays[name] = to_array(inputs[name], specs[name], strict=strict)
        except RestError as error:
            if specs[name].dtype.kind not in "OS":
                raise
            raise invalid_argument(f"Input '{name}': {error.message}") from None
    return arrays


def request_inputs(
    doc: Mapping, specs: Mapping[str, TensorSpec], *, strict: bool = False
) -> tuple[dict[str, np.ndarray], str]:
    """The named input arrays of a predict request and its format (`"row"` or `"columnar"`).

    Args:
        doc: the parsed request object.
        specs: the signature's inputs by name.
        strict: check every element's JSON type (slow); see `to_array`.

    Raises:
        RestError: 400 with TF Serving's wording for the fault.
    """
    has_instances = "instances" in doc
    has_inputs = "inputs" in doc
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {brief(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        arrays, request_format = _row_inputs(doc, specs, strict), ROW
    elif has_inputs:
        arrays, request_format = _columnar_inputs(doc, specs, strict), COLUMNAR
    else:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    for name, array in arrays.items():
        _check_input(name, array, specs[name])
    batch_sizes = {name: array.shape[0] for name, array in arrays.items()}
    if len(set(batch_sizes.values())) > 1:
        sizes = ", ".join(f"{name} has {size}" for name, size in sorted(batch_sizes.items()))
        raise invalid_argument(f"Inputs disagree on the batch size: {sizes}")
    return arrays, request_format


def _json_ready(array: np.ndarray):
    if array.dtype.kind in "SO":
        return np.vectorize(
            lambda b: b.decode("utf-8") if isinstance(b, bytes) else str(b), otypes=[object]
        )(array).tolist()
    return array.tolist()


def response_document(outputs: Mapping[str, np.ndarray], request_format: str) -> dict:
    """TF Serving's answer: `{"predictions": [...]}` (row) or `{"outputs": {...}}` (columnar).

    With one output the name is dropped, as TF Serving does.
    """
    names = sorted(outputs)
    if request_format == COLUMNAR:
        if len(names) == 1:
            return {"outputs": _json_ready(outputs[names[0]])}
        return {"outputs": {name: _json_ready(outputs[name]) for name in names}}
    batch = None
    for name in names:
        size = outputs[name].shape[0] if outputs[name].ndim else None
        if size is None:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and size != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}"
            )
        batch = size
    columns = {name: _json_ready(outputs[name]) for name in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(batch)]}


def predict_request_document(
    inputs: Mapping[str, np.ndarray],
    request_format: str = COLUMNAR,
    signature: str = DEFAULT_SIGNATURE,
) -> dict:
    """The JSON request object for named, batched input arrays (client side)."""
    if request_format not in FORMATS:
        raise ValueError(f"request_format must be one of {FORMATS}; got {request_format!r}")
    lists = {name: np.asarray(array).tolist() for name, array in inputs.items()}
    if request_format == COLUMNAR:
        return {"signature_name": signature, "inputs": lists}
    sizes = {len(value) for value in lists.values()}
    if len(sizes) != 1:
        raise ValueError(
            f"inputs disagree on the batch size: { {k: len(v) for k, v in lists.items()} }"
        )
    (batch,) = sizes
    return {
        "signature_name": signature,
        "instances": [{name: lists[name][i] for name in lists} for i in range(batch)],
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
