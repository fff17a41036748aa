"""TF Serving's REST predict format on the server side: JSON request bodies to NumPy inputs,
outputs back to answer documents.

The request and answer documents, and the JSON, are `ave_tf.serving.rest_format`'s, which the
clients use too, so the two sides agree on one reading of the format.

Errors are `RestError`s carrying the HTTP status and a message worded like TF Serving's
(`tensorflow_serving/util/json_tensor.cc`), so clients that match on them see the same text.
Unlike TF Serving, non-finite input values (NaN, Infinity) are refused with a 400: the model's
answer to them is meaningless, and refusing them says so at the door.

`loads_request` lifts long base64 strings (b64 values) out of a request before orjson reads the
rest. The work a request can cause is bounded before and while it is parsed: `check_json_counts`
refuses bodies holding more JSON values, lists, objects or strings than the largest batch the
server takes needs, orjson refuses nesting deeper than 1,024 levels and integers beyond a
double, `request_inputs` refuses more examples than that batch before decoding any, and
`to_array` refuses an input nested deeper than its signature before NumPy builds anything.
"""

import binascii
import dataclasses
import itertools
import json
import secrets
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import orjson
import pybase64

from ave_tf.serving.rest_format import (
    B64_KEY,
    BRIEF_CHARS,
    COLUMNAR,
    DEFAULT_SIGNATURE,
    ROW,
    brief,
    loads,
)


class RestError(Exception):
    """A request fault with its HTTP status; `message` is what goes into `{"error": ...}`
    (any text: `error_document` makes it writable)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_document(message: str) -> dict[str, str]:
    """`{"error": message}` that `dumps` can always write: a lone surrogate (which the
    standard library's parser lets into names a request echoes) becomes its `\\udXXX`
    escape text."""
    return {"error": message.encode("utf-8", "backslashreplace").decode("utf-8")}


def clipped(text: str, limit: int = BRIEF_CHARS) -> str:
    """`text` cut to `limit` characters for a message that echoes it (names, paths)."""
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


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


def loads_request(body: bytes):
    """`loads` for request bodies: long base64 strings (b64 values) are lifted out before
    orjson reads the rest (`_LongStrings`); the result is the same."""
    long_strings = _LongStrings.cut(body)
    if long_strings is not None:
        doc = long_strings.parse()
        if doc is not None:
            return doc
    return loads(body)


class _LongStrings:
    """A body's long base64 strings, each replaced by a short random key ("skeleton").

    orjson reads a 1.3 MB b64 value at ~2.7 GB/s (0.5 ms: it scans every byte for escapes);
    lifted out, the value is checked by pybase64 and made a `str` in ~0.13 ms. The result is
    `orjson.loads(body)` exactly or nothing (None: the caller parses the whole body):

    - a long string is the stretch between two consecutive `"` holding no backslash and passing
      pybase64's strict check (the base64 alphabet, padded: no control character, nothing to
      unescape). Were its opening quote an escaped one inside a longer string, or its stretch
      between two strings, the skeleton would not give back its key as a whole string value.
    - each key is a fresh random nonce plus an index, so no text of the request can forge one;
      every key must come back exactly once, as a string value (not a key), among the first
      `_MAX_VALUES` values the search visits (it stops when all are back).
    """

    MIN_BYTES = 65_536
    """Shorter strings stay in the skeleton (one video's b64 visual features: 1.3 MB)."""
    _MAX_QUOTES = 1_024
    """More quotes and the body is parsed whole (~0.1 ms spent looking; a b64 request holds 4
    per video and input)."""
    _MAX_VALUES = 4_096

    def __init__(self, skeleton: bytes, strings: dict[str, str]):
        self.skeleton = skeleton
        self.strings = strings

    @classmethod
    def cut(cls, body: bytes) -> "_LongStrings | None":
        """The skeleton of `body`, or None when it holds no long string (or too many quotes
        to look through)."""
        if len(body) < cls.MIN_BYTES or not isinstance(body, bytes | bytearray):
            return None
        quotes = []
        at = body.find(b'"')
        while at >= 0:
            if len(quotes) == cls._MAX_QUOTES:
                return None
            quotes.append(at)
            at = body.find(b'"', at + 1)
        view = memoryview(body)
        nonce = secrets.token_hex(16)
        parts, strings, start = [], {}, 0
        for opening, closing in itertools.pairwise(quotes):
            if closing - opening <= cls.MIN_BYTES or body.find(b"\\", opening, closing) >= 0:
                continue
            text = view[opening + 1 : closing]
            try:
                pybase64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                continue
            key = f"{nonce}{len(strings)}"
            strings[key] = str(text, "ascii")
            parts += [view[start : opening + 1], key.encode()]
            start = closing
        if not strings:
            return None
        parts.append(view[start:])
        return cls(b"".join(parts), strings)

    def parse(self):
        """`orjson.loads` of the original body, or None (see the class docstring)."""
        try:
            doc = orjson.loads(self.skeleton)
        except orjson.JSONDecodeError:
            return None
        missing = set(self.strings)
        stack, visited = [doc], 0
        while stack and missing:
            node = stack.pop()
            visited += len(node)
            if visited > self._MAX_VALUES:
                return None
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for where, value in items:
                if isinstance(value, str):
                    if value in missing:
                        node[where] = self.strings[value]
                        missing.discard(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        return None if missing else doc


def parse_json(body: bytes) -> dict:
    """The request document; empty, invalid or non-object JSON is a 400 as in TF Serving."""
    if not body or body.isspace():  # (strip() would copy the body)
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = loads_request(body)
    except UnicodeDecodeError as error:
        raise invalid_argument(f"JSON Parse error: Invalid encoding in string. ({error})") from None
    except json.JSONDecodeError as error:
        raise invalid_argument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except ValueError as error:  # the standard library's digit limit or depth
        raise invalid_argument(f"JSON Parse error: {error}") from None
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {brief(doc)} Is not object")
    return doc


@dataclasses.dataclass(frozen=True)
class JsonCounts:
    """Counts of a predict body's JSON: values, lists (`[`), objects (`{`) and strings.

    As a bound, each is what the largest accepted batch needs (`example_counts`,
    `body_bound`); `check_json_counts` compares a body's byte counts with it before parsing.
    """

    values: int
    lists: int
    objects: int
    strings: int


def example_counts(specs: Mapping[str, TensorSpec]) -> JsonCounts | None:
    """What one example of a signature's inputs takes in the longer (row) format: its row
    object, the lists nesting each input, the leaves, and for string inputs a `{"b64": ...}`
    object and its key per leaf. None when a non-batch dimension is unknown (no bound can be
    derived)."""
    lists = leaves = string_leaves = 0
    for spec in specs.values():
        dims = spec.shape[1:]
        if any(d is None for d in dims):
            return None
        level = 1
        for d in dims:
            lists += level  # the lists at this level
            level *= d
        leaves += level
        if spec.dtype.kind in "OSU":
            string_leaves += level
    objects = 1 + string_leaves  # the row object, one {"b64": ...} per string
    strings = len(specs) + 2 * string_leaves  # the row's keys; per string its value and "b64"
    return JsonCounts(
        values=objects + lists + leaves, lists=lists, objects=objects, strings=strings
    )


_DOCUMENT_VALUES = 64
"""Room for the values of a request outside its inputs (signature name, wrappers)."""


def body_bound(per_example: Iterable[JsonCounts], examples: int) -> JsonCounts:
    """The most a body of `examples` examples of any of these signatures holds, each count
    on its own (the body's signature is not known before parsing)."""
    per_example = list(per_example)
    return JsonCounts(
        *(
            examples * max(getattr(counts, field.name) for counts in per_example) + _DOCUMENT_VALUES
            for field in dataclasses.fields(JsonCounts)
        )
    )


def _count_up_to(body: bytes, byte: bytes, limit: int) -> int:
    """How often `byte` occurs in `body`, counting stopped at `limit + 1` (`find` runs at
    memchr speed, ~30x `bytes.count`, and the count stops early in a hostile body)."""
    count, at = 0, body.find(byte)
    while at >= 0 and count <= limit:
        count += 1
        at = body.find(byte, at + 1)
    return count


def check_json_counts(body: bytes, bound: JsonCounts) -> None:
    """Refuses (413) a body holding more JSON objects, strings, lists or values than `bound`,
    before parsing.

    Every object opens with `{`, every string takes two `"`, every list opens with `[`, and
    every value but the first is preceded by `,`, `[` or `{`, so counting those bytes bounds
    each from above (and so the Python objects parsing would build).
    """
    sparse = (
        ("objects", b"{", bound.objects),
        ("strings", b'"', 2 * bound.strings),  # counted as quotes
        ("lists", b"[", bound.lists),
    )
    counts = {}
    for what, byte, limit in sparse:
        counts[what] = _count_up_to(body, byte, limit)
        if counts[what] > limit:
            shown = limit // 2 if what == "strings" else limit
            raise RestError(
                413,
                f"Request body holds more {what} than the {shown} the largest accepted batch "
                "needs; send fewer examples per request",
            )
    if len(body) + 1 <= bound.values:  # the count below never exceeds len(body) + 1
        return
    values = counts["lists"] + counts["objects"] + body.count(b",") + 1
    if values > bound.values:
        raise RestError(
            413,
            f"Request body holds up to {values} JSON values, more than the {bound.values} the "
            "largest accepted batch needs; send fewer examples per request",
        )


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


def _walk_leaves(
    value, shape: list[int], on_leaf: Callable[[object], None], level: int = 0
) -> None:
    """Walks nested lists like TF Serving's FillTensorProto and raises on the first fault.

    Every list must have the size `shape` gives its level and every leaf must stand at level
    `len(shape)`; `on_leaf` sees each leaf in row-major order (and raises on a bad one).
    """
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid_argument(
                f"JSON Value: {brief(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {len(shape)}"
            )
        on_leaf(value)
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
        _walk_leaves(item, shape, on_leaf, level + 1)


def _check_numbers(value, shape: list[int], spec: TensorSpec) -> None:
    """Raises on the first element of `value` that is misplaced or not a JSON number."""

    def check_number(leaf) -> None:
        if not isinstance(leaf, int | float) or isinstance(leaf, bool):
            raise invalid_argument(
                f"JSON Value: {brief(leaf)} Type: {_json_type(leaf)} "
                f"is not of expected type: {spec.type_name}"
            )

    _walk_leaves(value, shape, check_number)


def to_array(
    value, spec: TensorSpec, *, strict: bool = False, name: str | None = None
) -> np.ndarray:
    """A JSON value (nested lists of numbers) as a dense array of `spec.dtype`.

    The fast path lets NumPy build the array; `strict` (or any irregularity NumPy reports)
    walks the value to name the first offending element the way TF Serving does. Booleans
    mixed with numbers are only caught in strict mode (callers turn it on when the raw body
    contains `true`/`false`). String inputs go to `string_array` (`name`, the input's name,
    goes into its messages).
    """
    shape = _dense_shape(value)
    if len(shape) > len(spec.shape):  # NumPy would build it (up to 64 levels) to no end
        raise invalid_argument(
            f"JSON Value: {brief(value)} is nested {len(shape)} levels deep; "
            f"the input has {len(spec.shape)} dimensions"
        )
    if spec.dtype.kind in "OSU":
        return string_array(value, spec, name)
    if strict:
        _check_numbers(value, shape, spec)
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        _check_numbers(value, shape, spec)
        raise invalid_argument(
            f"JSON Value: {brief(value)} is not a dense numeric tensor"
        ) from None
    if array.dtype.kind not in "iuf":
        _check_numbers(value, shape, spec)
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


def string_array(value, spec: TensorSpec, name: str | None = None) -> np.ndarray:
    """A JSON value for a string input as a NumPy object array of `bytes`, read as TF Serving
    reads DT_STRING values: a JSON string is its UTF-8 bytes, an object `{"b64": "<base64>"}`
    (that key only) its decoded bytes; values nest in lists like numbers do.

    Raises:
        RestError: 400 for a list of the wrong size or depth, a value of another JSON type,
            another object, or text that is not base64 (the message names `name` and the
            value's index).
    """
    shape = _dense_shape(value)
    values = []

    def read_string(leaf) -> None:
        try:
            values.append(_string_value(leaf, spec))
        except (binascii.Error, ValueError) as error:
            where = f"input '{name}'" if name else "a string input"
            # the leaves before this one filled the shape in row-major order
            position = ",".join(str(i) for i in np.unravel_index(len(values), shape))
            raise invalid_argument(
                f"Unable to base64 decode {where} at index [{position}]: {error}"
            ) from None

    _walk_leaves(value, shape, read_string)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array.reshape(shape)


def _string_value(item, spec: TensorSpec) -> bytes:
    """The bytes of one string leaf; `binascii.Error` for text that is not base64."""
    if isinstance(item, str):
        return item.encode("utf-8", "surrogatepass")
    if not isinstance(item, dict):
        raise invalid_argument(
            f"JSON Value: {brief(item)} Type: {_json_type(item)} "
            f"is not of expected type: {spec.type_name}"
        )
    text = item.get(B64_KEY)
    if len(item) != 1 or not isinstance(text, str):
        raise invalid_argument(f"JSON Value: {brief(item)} not formatted correctly for base64 data")
    text = text + "=" * (-len(text) % 4)  # strict: the base64 alphabet and padding only
    try:
        return pybase64.b64decode(text, validate=True)  # SIMD: ~40x binascii on 1 MB
    except binascii.Error:
        binascii.a2b_base64(text, strict_mode=True)  # raises with the precise reason
        raise


def _check_input(name: str, array: np.ndarray, spec: TensorSpec) -> None:
    got = "[" + ",".join(str(d) for d in array.shape) + "]"
    if array.ndim != len(spec.shape) or any(
        want is not None and want != have
        for want, have in zip(spec.shape, array.shape, strict=True)
    ):
        raise invalid_argument(
            f"Input '{name}' has shape {got} but the signature expects {spec.shape_text()}"
        )
    refusal = non_finite_refusal(name, array)
    if refusal:
        raise invalid_argument(refusal)


def non_finite_refusal(name: str, array: np.ndarray) -> str | None:
    """Why float input `name` is refused, naming its first NaN or Infinity and that value's
    index; None when every value is finite or the input is not float. (The REST and the
    gRPC stand-in both refuse such inputs: the model's answer to them is meaningless.)"""
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    index = ",".join(str(i) for i in np.argwhere(~np.isfinite(array))[0])
    return (
        f"Input '{name}' has a non-finite value (NaN or Infinity) at index [{index}]; "
        "this model accepts finite numbers only"
    )


def _check_batch(size: int, max_batch: int | None) -> None:
    """413 for a batch of more than `max_batch` examples (checked before any is decoded)."""
    if max_batch is not None and size > max_batch:
        raise RestError(
            413,
            f"The request holds {size} examples, more than the {max_batch} this server takes "
            "at once; send fewer examples per request",
        )


def _row_inputs(
    doc: Mapping, specs: Mapping[str, TensorSpec], strict: bool, max_batch: int | None
) -> dict:
    instances = doc["instances"]
    if not isinstance(instances, list):
        raise invalid_argument(
            f"JSON Value: {brief(doc)} Excepting 'instances' to be an list/array"
        )
    if not instances:
        raise invalid_argument(f"JSON Value: {brief(doc)} No values in 'instances' array")
    _check_batch(len(instances), max_batch)
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
                shown = clipped(key)
                raise invalid_argument(
                    f"Failed to process element: {index} key: {shown} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {shown}"
                )
        if set(item) != set(names):
            raise invalid_argument(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{brief(item)} keys must be equal to: {','.join(names)}"
            )
        for name in names:
            try:
                array = to_array(item[name], specs[name], strict=strict, name=name)
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


def _columnar_inputs(
    doc: Mapping, specs: Mapping[str, TensorSpec], strict: bool, max_batch: int | None
) -> dict:
    inputs = doc["inputs"]
    if not isinstance(inputs, dict):
        raise invalid_argument(
            "inputs is a plain value/list, but expecting an object as multiple input "
            "tensors required as per tensorinfo_map"
        )
    for name in sorted(specs):
        if isinstance(inputs.get(name), list):
            _check_batch(len(inputs[name]), max_batch)
    arrays = {}
    for name in sorted(specs):
        if name not in inputs:
            unknown = sorted(clipped(key) for key in set(inputs) - set(specs))
            hint = f" (got unknown input(s): {', '.join(unknown)})" if unknown else ""
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.{hint}")
        arrays[name] = to_array(inputs[name], specs[name], strict=strict, name=name)
    return arrays


def request_inputs(
    doc: Mapping,
    specs: Mapping[str, TensorSpec],
    *,
    strict: bool = False,
    max_batch: int | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """The named input arrays of a predict request and its format (`"row"` or `"columnar"`).

    Args:
        doc: the parsed request object.
        specs: the signature's inputs by name.
        strict: check every element's JSON type (slow); see `to_array`.
        max_batch: the most examples a request may hold (None: no bound), checked before
            any example is decoded.

    Raises:
        RestError: 400 with TF Serving's wording for the fault; 413 beyond `max_batch`.
    """
    has_instances = "instances" in doc
    has_inputs = "inputs" in doc
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {brief(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        arrays, request_format = _row_inputs(doc, specs, strict, max_batch), ROW
    elif has_inputs:
        arrays, request_format = _columnar_inputs(doc, specs, strict, max_batch), COLUMNAR
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
    """`array` as `dumps` writes it: strings as lists of text, numbers as the array."""
    if array.dtype.kind in "SO":
        return np.vectorize(
            lambda b: b.decode("utf-8") if isinstance(b, bytes) else str(b), otypes=[object]
        )(array).tolist()
    return np.ascontiguousarray(array)


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
