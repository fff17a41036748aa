"""Hypothesis fuzzing of the stand-in's REST predict with malformed bodies (127.0.0.1 only).

Eight families of generated bodies (wrong JSON types, wrong shapes, deep nesting, huge and odd
numbers, unicode and raw bytes, truncated JSON, broken gzip, b64 objects, mixed row/columnar)
go to the live server; each must be answered with a 4xx within `SECONDS_PER_REQUEST`, the
server must be healthy after each family, and its memory must not grow past `RSS_GROWTH_BYTES`.
Derandomized: CI sends the same bodies every run. `pytest -s` prints the figures.
"""

import collections
import gzip
import http.client
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rss import PeakRss, rss_bytes
from serving_helpers import MODEL_NAME, http_call, random_videos

from ave_tf.serving.client import ServingClient

PREDICT = f"/v1/models/{MODEL_NAME}:predict"
EXAMPLES_PER_FAMILY = 260
SECONDS_PER_REQUEST = 10.0
RSS_GROWTH_BYTES = 256 * 1024 * 1024
"""Bound on the peak RSS growth over the whole run (bodies are below 1 MB each)."""

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=24,
)
input_names = st.sampled_from(["audio", "visual", "audio_bytes", "visual_bytes", "frames", ""])


def _shaped(shape: list[int], leaf) -> object:
    value = leaf
    for size in reversed(shape):
        value = [value] * size
    return value


@st.composite
def shaped_arrays(draw):
    """Nested lists of numbers of a near-miss shape (small: at most ~6,000 innermost lists or
    numbers; a 0 dimension does not make its outer ones free: [129, 129, 129, 129, 0] is
    129**4 empty lists, a ~1 GB body built in this process)."""
    shape = draw(
        st.lists(st.sampled_from([0, 1, 2, 7, 9, 10, 11, 127, 128, 129]), max_size=5).filter(
            lambda s: _size([d or 1 for d in s]) <= 6000
        )
    )
    return _shaped(shape, draw(st.sampled_from([0, 0.5, -1e30, 3]))), shape


def _size(shape: list[int]) -> int:
    size = 1
    for d in shape:
        size *= d
    return size


@st.composite
def documents(draw, values):
    """A predict document with `values` where the inputs go, in row, columnar or both."""
    kind = draw(st.sampled_from(["columnar", "row", "both", "plain", "bare"]))
    names = draw(st.lists(input_names, max_size=3, unique=True))
    inputs = {name: draw(values) for name in names}
    if kind == "columnar":
        doc = {"inputs": inputs}
    elif kind == "row":
        doc = {"instances": draw(st.lists(st.just(inputs) | values, max_size=3))}
    elif kind == "both":
        doc = {"inputs": inputs, "instances": [inputs]}
    elif kind == "plain":
        doc = {draw(st.sampled_from(["inputs", "instances"])): draw(values)}
    else:
        return draw(values)
    if draw(st.booleans()):
        doc["signature_name"] = draw(
            st.sampled_from(["serving_default", "predict_bytes", "", "nope"]) | json_scalars
        )
    return doc


def _encode(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


odd_numbers = st.one_of(
    st.integers(300, 6000).map(lambda n: "9" * n),
    st.integers(300, 6000).map(lambda n: "1" + "0" * n + ".5"),
    st.sampled_from(
        ["1e400", "-1e400", "1e-400", "-0", "0x10", "+1", ".5", "1.", "01", "1e", "--1"]
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf", "1_000", "١"]),
)


@st.composite
def number_bodies(draw):
    """A shaped input with one leaf replaced by an odd or huge number token."""
    value, _ = draw(shaped_arrays())
    text = _encode({"inputs": {"audio": value, "visual": 0}})
    token = draw(odd_numbers)
    spots = [i for i, c in enumerate(text) if c in b"0123456789"] or [len(text) - 2]
    spot = draw(st.sampled_from(spots[:50]))
    return text[:spot] + token.encode() + text[spot + 1 :]


@st.composite
def deep_bodies(draw):
    depth = draw(st.integers(1, 3000))
    opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ("[[", "]]")]))
    core = opening * depth + draw(st.sampled_from(["0", "", "[]", '"x"'])) + closing * depth
    if draw(st.booleans()):
        core = core[: draw(st.integers(0, len(core)))]  # unbalanced
    wrapper = draw(
        st.sampled_from(
            ["{}", '{"inputs":{"audio":%s,"visual":0}}', '{"instances":[{"audio":%s,"visual":0}]}']
        )
    )
    return (wrapper % core if "%s" in wrapper else core).encode()


@st.composite
def truncated_bodies(draw):
    body = _encode(draw(documents(json_values | shaped_arrays().map(lambda v: v[0]))))
    return body[: draw(st.integers(0, max(0, len(body) - 1)))]


@st.composite
def text_bodies(draw):
    """Raw bytes, other encodings and unicode where JSON structure is expected."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.binary(max_size=300))
    doc = draw(documents(json_values))
    text = json.dumps(doc, ensure_ascii=False)
    if choice == 1:
        return text.encode("utf-16")
    if choice == 2:
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    if choice == 3:
        cut = draw(st.integers(0, len(text)))
        return (text[:cut] + draw(st.text(min_size=1, max_size=5)) + text[cut:]).encode(
            "utf-8", "surrogatepass"
        )
    return _encode(doc).replace(b'"', b"\xff", 1)


@st.composite
def gzip_bodies(draw):
    body = gzip.compress(_encode(draw(documents(json_values))))
    damage = draw(st.sampled_from(["truncate", "append", "flip", "plain"]))
    if damage == "truncate":
        return body[: draw(st.integers(0, len(body) - 1))]
    if damage == "append":
        return body + draw(st.binary(min_size=1, max_size=20))
    if damage == "flip":
        spot = draw(st.integers(0, len(body) - 1))
        return body[:spot] + bytes([body[spot] ^ 0xFF]) + body[spot + 1 :]
    return _encode(draw(documents(json_values)))  # not gzip at all


b64_values = st.fixed_dictionaries(
    {"b64": st.text(max_size=40) | st.binary(max_size=30).map(lambda b: b.hex()) | json_scalars}
)
b64_bodies = documents(b64_values | st.lists(b64_values, max_size=3)).map(_encode)

FAMILIES = {
    "json types": (documents(json_values).map(_encode), False),
    "shapes": (documents(shaped_arrays().map(lambda v: v[0])).map(_encode), False),
    "numbers": (number_bodies(), False),
    "nesting": (deep_bodies(), False),
    "unicode and bytes": (text_bodies(), False),
    "truncated json": (truncated_bodies(), False),
    "broken gzip": (gzip_bodies(), True),
    "b64": (b64_bodies, False),
}


def _post(port: int, body: bytes, gzipped: bool) -> tuple[int, float]:
    headers = {"Content-Type": "application/json"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    start = time.monotonic()
    status, answer = http_call(port, "POST", PREDICT, body, headers, 2 * SECONDS_PER_REQUEST)
    assert set(answer) == {"error"}, (status, answer)
    return status, time.monotonic() - start


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", f"/v1/models/{MODEL_NAME}")
        response = connection.getresponse()
        return response.status == 200 and b"AVAILABLE" in response.read()
    finally:
        connection.close()


def _fuzz(port: int, family: str, statuses: collections.Counter, latencies: list) -> None:
    """Sends `EXAMPLES_PER_FAMILY` bodies of one family; checks each answer."""
    bodies, gzipped = FAMILIES[family]

    @settings(
        max_examples=EXAMPLES_PER_FAMILY,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies)
    def one(body):
        status, seconds = _post(port, body, gzipped)
        assert 400 <= status < 500, (family, status, body[:200])
        assert seconds < SECONDS_PER_REQUEST, (family, seconds, body[:200])
        statuses[status] += 1
        latencies.append(seconds)

    one()


@pytest.mark.slow
def test_malformed_bodies_get_4xx_quickly_and_leave_the_server_healthy(server):
    statuses, latencies = collections.Counter(), []
    # Run each signature once first: the first batch-1 call compiles the XLA path (a one-time
    # ~200-400 MB), which a malformed body that reaches the graph would otherwise trigger.
    audio, visual = random_videos(1, seed=3)
    for binary in (False, True):
        ServingClient(server.url, MODEL_NAME, binary=binary).predict_outputs(audio, visual)
    start_rss = rss_bytes()
    started = time.monotonic()
    with PeakRss(interval=0.05) as peak:
        for family in FAMILIES:
            _fuzz(server.port, family, statuses, latencies)
            assert _healthy(server.port), family
    requests = sum(statuses.values())
    print(
        f"\nREST fuzz: {requests} malformed bodies in {time.monotonic() - started:.1f} s; "
        f"statuses {dict(sorted(statuses.items()))}; max latency {max(latencies) * 1e3:.0f} ms, "
        f"p99 {sorted(latencies)[int(0.99 * len(latencies))] * 1e3:.0f} ms; peak RSS growth "
        f"{peak.growth_bytes / 2**20:.0f} MiB, after {(rss_bytes() - start_rss) / 2**20:.0f} MiB"
    )
    assert requests >= 2000
    assert peak.growth_bytes < RSS_GROWTH_BYTES
