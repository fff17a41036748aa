"""`rest_api.loads_request` (long base64 strings lifted out) is `orjson.loads` of the body."""

import orjson
import pybase64
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import random_videos

from ave_tf.serving.client import ServingClient
from tfserving_standin import rest_api

LONG = rest_api._LongStrings.MIN_BYTES + 1


def _b64(size: int, seed: int) -> str:
    """Base64 text of `size` pseudo-random bytes (padded, so pybase64's strict check passes)."""
    return pybase64.b64encode_as_string(bytes((seed * 131 + i * 7) % 256 for i in range(size)))


def _outcome(parse, body: bytes):
    try:
        return "parsed", parse(body)
    except ValueError:  # orjson.JSONDecodeError is one
        return "refused", None


@pytest.mark.parametrize("request_format", ["columnar", "row"])
@pytest.mark.parametrize("batch", [1, 3])
def test_client_b64_bodies_take_the_fast_path_and_parse_the_same(request_format, batch):
    audio, visual = random_videos(batch, seed=5)
    client = ServingClient("http://127.0.0.1:1", "m", binary=True, request_format=request_format)
    body, _ = client.encode_request(audio, visual)
    long_strings = rest_api._LongStrings.cut(body)
    assert long_strings is not None and len(long_strings.strings) == batch  # the visual values
    assert len(long_strings.skeleton) < len(body) // 100  # the audio values stay in it
    assert long_strings.parse() == orjson.loads(body)
    assert rest_api.loads_request(body) == orjson.loads(body)


SKELETON_CASES = {
    # a long string whose opening quote is an escaped one inside another string
    "escaped opening quote": b'{"a": "x\\"%s"}',
    # a long string as an object key: keys are not searched, the whole body is parsed
    "long key": b'{"%s": 1}',
    # long base64 text between two strings, not in one: invalid JSON either way
    "between strings": b'["x"%s"y"]',
    # trailing garbage after the document
    "trailing garbage": b'{"a": "%s"} x',
    # the same long string twice, one in a nested list
    "twice": b'{"a": ["%s", {"b": "%s"}]}',
}


@pytest.mark.parametrize("case", SKELETON_CASES)
def test_long_strings_in_odd_places_parse_as_orjson_does(case):
    template = SKELETON_CASES[case]
    text = _b64(LONG, seed=1).encode()
    body = template % ((text,) * template.count(b"%s"))
    assert _outcome(rest_api.loads_request, body) == _outcome(orjson.loads, body)


def test_a_long_key_or_an_escaped_quote_falls_back_to_the_whole_body():
    text = _b64(LONG, seed=2).encode()
    for template in (SKELETON_CASES["long key"], SKELETON_CASES["escaped opening quote"]):
        long_strings = rest_api._LongStrings.cut(template % text)
        assert long_strings is not None and long_strings.parse() is None


def test_a_body_with_many_quotes_is_parsed_whole():
    """The search for long strings gives up after `_MAX_QUOTES` quotes: its cost is bounded."""
    many = ["x"] * rest_api._LongStrings._MAX_QUOTES
    body = orjson.dumps({"a": many, "b": _b64(LONG, seed=3)})
    assert rest_api._LongStrings.cut(body) is None
    assert rest_api.loads_request(body) == orjson.loads(body)
    fewer = orjson.dumps({"a": many[:100], "b": _b64(LONG, seed=3)})
    assert rest_api._LongStrings.cut(fewer) is not None


@st.composite
def bodies_with_long_strings(draw):
    """A JSON document with long base64 strings among short values, then maybe one byte
    changed (quote, backslash, control character, a non-base64 letter...)."""
    long_values = st.builds(_b64, st.integers(LONG, LONG + 64), st.integers(0, 5))
    leaves = (
        st.none()
        | st.integers(-9, 9)
        | st.text(max_size=6)
        | st.sampled_from(['"', '\\"x', "\\", "\n"])
        | long_values
    )
    document = draw(
        st.recursive(
            leaves,
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=4) | long_values, children, max_size=3)
            ),
            max_leaves=6,
        )
    )
    body = bytearray(orjson.dumps(document))
    if draw(st.booleans()) and body:
        at = draw(st.integers(0, len(body) - 1))
        body[at : at + 1] = draw(st.sampled_from([b'"', b"\\", b"\x01", b"-", b"", b"==", b"}"]))
    return bytes(body)


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies_with_long_strings())
def test_generated_bodies_parse_as_orjson_does(body):
    assert _outcome(rest_api.loads_request, body) == _outcome(orjson.loads, body)
