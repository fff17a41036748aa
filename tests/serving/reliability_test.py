"""Regression tests of the stand-in's bounds (issue 12's reliability findings), 127.0.0.1 only.

Each malformed request must get its 4xx (never a 5xx or a dropped connection) and leave the
server healthy; overload gets 503; slow clients are cut off by the whole-request deadline.
"""

import contextlib
import gzip
import select
import socket
import threading
import time

import pytest
from rss import PeakRss
from serving_helpers import MODEL_NAME, assert_healthy, exchange, post, random_videos

from ave_tf.serving import rest_format

PREDICT = f"/v1/models/{MODEL_NAME}:predict"
NINES = "9" * 4301


@pytest.mark.parametrize(
    "body, message",
    [
        (b"[" * 10000 + b"]" * 10000, "JSON Parse error: depth limit exceeded"),
        (b"[" * 983 + b"]" * 983, "Is not object"),
        (b'{"inputs": {"audio": ' + b"[" * 1000 + b"0" + b"]" * 1000 + b"}}", "nested 1000 levels"),
        (
            b'{"instances":[{"audio":' + b"[" * 64 + b"0" + b"]" * 64 + b',"visual":0}]}',
            "nested 64",
        ),
        (
            b'{"instances":[{"audio":[[0],' + b"[" * 64 + b"0" + b"]" * 64 + b'],"visual":0}]}',
            "level",
        ),
        (b'{"inputs": {"audio": ' + NINES.encode() + b"}}", "JSON Parse error: number is infinity"),
        (b'{"a": NaN, "b": ' + NINES.encode() + b"}", "JSON Parse error: Exceeds the limit"),
        (b'{"a": NaN, "b": ' + b"[" * 5000 + b"]" * 5000 + b"}", "depth limit exceeded"),
    ],
    ids=[
        "deep body",
        "983 levels",
        "deep input",
        "64 in a row",
        "64 ragged",
        "huge int",
        "huge int stdlib",
        "deep stdlib",
    ],
)
def test_deep_nesting_and_huge_numbers_are_400(server, body, message):
    status, answer = post(server.port, PREDICT, body)
    assert status == 400, answer
    assert message in answer["error"]
    assert len(answer["error"]) < 600
    assert_healthy(server.port)


@pytest.mark.parametrize(
    "method, suffix", [("POST", ":predict"), ("GET", ""), ("GET", "/metadata")]
)
def test_huge_version_in_the_url_is_400(server, method, suffix):
    path = f"/v1/models/{MODEL_NAME}/versions/{NINES}{suffix}"
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
    ((status, answer),) = exchange(server.port, head.encode())
    assert status == 400
    assert (
        answer["error"].startswith("Failed to convert version: 9999") and len(answer["error"]) < 100
    )
    path = f"/v1/models/{MODEL_NAME}/versions/{2**63}{suffix}"  # just beyond int64
    ((status, answer),) = exchange(
        server.port, f"{method} {path} HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    )
    assert (status, answer) == (400, {"error": f"Failed to convert version: {2**63} to numeric."})
    assert_healthy(server.port)


@pytest.mark.parametrize(
    "filler, values",
    [(b"[],", 2), (b"0.0,", 1), (b"{},", 2)],
    ids=["empty lists", "numbers", "objects"],
)
def test_amplifying_bodies_are_refused_before_parsing(server, filler, values):
    """64 MiB of `[],` once cost 2.3 GB and 11 s; refused now from counting its bytes."""
    count = 64 * 1024 * 1024 // len(filler)
    raw = b'{"inputs": {"audio": [' + filler * count + b'0], "visual": 0}}'
    body = gzip.compress(raw, compresslevel=1)
    with PeakRss() as peak:
        start = time.monotonic()
        status, answer = post(server.port, PREDICT, body, "Content-Encoding: gzip\r\n")
        seconds = time.monotonic() - start
    assert status == 413, answer
    assert "the largest accepted batch needs" in answer["error"]
    assert seconds < 10
    assert peak.growth_bytes < 3 * len(raw), peak.growth_bytes  # the body, not its objects
    assert_healthy(server.port)


def test_value_bound_follows_the_batch_limit(make_server):
    """A batch of `max_batch_size` passes the count; one video more does not."""
    small = make_server(max_batch_size=1)
    audio, visual = random_videos(2)
    for batch, want in ((1, 200), (2, 413)):
        for request_format in rest_format.FORMATS:
            document = rest_format.predict_request_document(
                {"audio": audio[:batch], "visual": visual[:batch]}, request_format
            )
            status, answer = post(small.port, PREDICT, rest_format.dumps(document))
            assert status == want, (batch, request_format, answer)


class _BlockingModel:
    """A loaded version whose predict waits for `release` (to hold a worker)."""

    def __init__(self, loaded):
        self._loaded = loaded
        self.inputs = loaded.inputs
        self.started = threading.Event()
        self.release = threading.Event()

    def predict(self, signature, arrays):
        self.started.set()
        assert self.release.wait(30)
        return self._loaded.predict(signature, arrays)


class _OneModelRepository:
    def __init__(self, repository, model):
        self._repository, self._model = repository, model

    def resolve(self, name, version=None, label=None):
        self._repository.resolve(name, version, label)
        return self._model

    def status(self, *args):
        return self._repository.status(*args)


@contextlib.contextmanager
def _one_predict_held(server, loaded_v1, make_server, **limits):
    """A server with ``limits`` whose first predict request waits inside the model until the
    block ends; yields ``(port, body)`` (a valid predict body) while it waits, then checks
    that the held request was answered 200."""
    model = _BlockingModel(loaded_v1)
    held = make_server(_OneModelRepository(server.repository, model), **limits)
    audio, visual = random_videos(1)
    body = rest_format.dumps(
        rest_format.predict_request_document({"audio": audio, "visual": visual})
    )
    first = {}
    holder = threading.Thread(target=lambda: first.update(answer=post(held.port, PREDICT, body)))
    holder.start()
    assert model.started.wait(30)
    try:
        yield held.port, body
    finally:
        model.release.set()
        holder.join(30)
    assert first["answer"][0] == 200


def test_full_worker_queue_answers_503_and_recovers(server, loaded_v1, make_server):
    with _one_predict_held(server, loaded_v1, make_server, max_workers=1, max_queued=0) as (
        port,
        body,
    ):
        status, answer = post(port, PREDICT, body)
        assert (status, answer) == (
            503,
            {"error": "Server busy: 1 requests running and 0 waiting; retry later"},
        )
        assert_healthy(port)  # status needs no worker
    assert post(port, PREDICT, body)[0] == 200


def test_connection_cap_answers_503_when_every_connection_is_busy(server, loaded_v1, make_server):
    limits = {"max_connections": 1, "max_workers": 1}
    with _one_predict_held(server, loaded_v1, make_server, **limits) as (port, _):
        # The only connection is busy predicting: nothing to evict.
        ((status, answer),) = exchange(port, b"GET /v1/models HTTP/1.1\r\n\r\n")
        assert (status, answer) == (
            503,
            {"error": "Server busy: too many connections; retry later"},
        )
    # The slot frees once the server has seen the first client leave (under load that can
    # take a moment after the client's read): within 10 s the next connection is served.
    # (Each probe's own connection is the next one to free, so poll the health check itself.)
    status_request = f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\n\r\n".encode()
    deadline = time.monotonic() + 10
    while (answers := exchange(port, status_request))[0][0] == 503:
        assert time.monotonic() < deadline, "the connection slot stayed taken"
        time.sleep(0.05)
    ((status, answer),) = answers
    assert status == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE", answer


def test_body_budget_answers_503(make_server):
    capped = make_server(max_body_bytes=1000, max_pending_body_bytes=1000)
    capped.pending_bodies.reserve(900)  # as if another request's body were being received
    status, answer = post(capped.port, PREDICT, b" " * 101)
    assert status == 503 and "too many request bodies in flight" in answer["error"]
    capped.pending_bodies.release(900)
    assert post(capped.port, PREDICT, b"{}")[0] == 400  # within the budget
    assert_healthy(capped.port)


def _drip(port: int, data: bytes, interval: float, closed: threading.Event, answers: list) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            for byte in data:
                sock.sendall(bytes([byte]))
                time.sleep(interval)
        except OSError:
            pass
        try:
            answers.append(sock.recv(4096))
        except OSError:
            answers.append(b"")
    closed.set()


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_dripping_client_is_cut_off_others_unaffected(make_server, phase):
    deadline = make_server(request_timeout=1.0)
    # Sent whole, each would take over 20 s at the drip's pace; the deadline is 1 s.
    pad = "x" * 60
    head = f"POST {PREDICT} HTTP/1.1\r\nX-Pad: {pad}\r\nContent-Length: 300\r\n\r\n".encode()
    if phase == "body":
        with socket.create_connection(("127.0.0.1", deadline.port), timeout=30) as sock:
            sock.sendall(head)
            start = time.monotonic()
            while not select.select([sock], [], [], 0.1)[0]:  # a byte until answered
                sock.sendall(b" ")
                assert time.monotonic() - start < 8
            answer = b"".join(iter(lambda: sock.recv(4096), b""))  # until closed
        assert answer.startswith(b"HTTP/1.1 408") and b"Request not received within 1 s" in answer
    else:
        closed, answers = threading.Event(), []
        start = time.monotonic()
        threading.Thread(target=_drip, args=(deadline.port, head, 0.2, closed, answers)).start()
        for _ in range(5):
            assert_healthy(deadline.port)  # others answered meanwhile
        assert closed.wait(10)
        assert time.monotonic() - start < 8
        assert answers == [b""]  # cut off (the base server answers nothing mid-headers)
    assert_healthy(deadline.port)


FRAMING = {
    "plus sign": ("Content-Length: +2\r\n", 400, "Invalid Content-Length: '+2'"),
    "underscore": ("Content-Length: 1_6\r\n", 400, "Invalid Content-Length: '1_6'"),
    "inner blank": ("Content-Length: 1 6\r\n", 400, "Invalid Content-Length: '1 6'"),
    "two lengths": (
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        400,
        "Invalid Content-Length: '2', '3'",
    ),
    "gzip, chunked": (
        "Transfer-Encoding: gzip, chunked\r\nContent-Length: 2\r\n",
        501,
        "Unsupported Transfer-Encoding: gzip, chunked",
    ),
    "chunked": ("Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", 411, "Chunked"),
}


@pytest.mark.parametrize("case", sorted(FRAMING))
def test_ambiguous_framing_is_refused_and_the_connection_closed(server, case):
    headers, want_status, message = FRAMING[case]
    request = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n{headers}\r\n{{}}".encode()
    follow = f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\n\r\n".encode()
    answers = exchange(server.port, request + follow, responses=2)
    assert len(answers) == 1, answers  # closed: nothing after it is taken as a request
    status, answer = answers[0]
    assert status == want_status and message in answer["error"], answer
    assert_healthy(server.port)


@pytest.mark.parametrize(
    "headers", ["Content-Length:  2 \r\n", "Content-Length: 2\r\nContent-Length: 2\r\n"]
)
def test_unambiguous_length_variants_frame_the_body(server, headers):
    """RFC 9110: blanks around a field value are not part of it, and a repeated equal
    Content-Length is one length; both frame the body as sent."""
    request = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n{headers}\r\n{{}}".encode()
    follow = f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\n\r\n".encode()
    answers = exchange(server.port, request + follow, responses=2)
    assert [status for status, _ in answers] == [400, 200]
    assert answers[0][1] == {"error": "Missing 'inputs' or 'instances' key"}


def test_get_body_is_read_not_taken_for_the_next_request(server):
    garbage = b"GET /v2/nope HTTP/1.1\r\n\r\n"
    first = f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\nContent-Length: {len(garbage)}\r\n\r\n"
    second = f"GET /v1/models/{MODEL_NAME}/metadata HTTP/1.1\r\n\r\n"
    answers = exchange(server.port, first.encode() + garbage + second.encode(), responses=2)
    assert [status for status, _ in answers] == [200, 200]
    assert "metadata" in answers[1][1]
    big = f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\nContent-Length: {1 << 20}\r\n\r\n"
    ((status, answer),) = exchange(server.port, big.encode())
    assert status == 413 and "exceeds the limit of 65536 bytes" in answer["error"]
    assert_healthy(server.port)


@pytest.mark.parametrize(
    "body, message",
    [
        (gzip.compress(b"{}") + b"garbage", "7 bytes after the end of the gzip stream"),
        (gzip.compress(b"{}") * 2, "bytes after the end of the gzip stream"),
        (gzip.compress(b'{"inputs": {}}')[:-6], "truncated gzip data"),
    ],
    ids=["garbage", "two members", "truncated"],
)
def test_gzip_must_end_where_the_body_ends(server, body, message):
    status, answer = post(server.port, PREDICT, body, "Content-Encoding: gzip\r\n")
    assert status == 400 and message in answer["error"], answer
    assert_healthy(server.port)


def test_brief_stays_short_and_shallow():
    deep = []
    for _ in range(5000):
        deep = [deep]
    assert rest_format.brief(deep).endswith("...(truncated)")
    assert len(rest_format.brief({"k" * 10_000: "v" * 10_000})) < 250
    assert rest_format.brief({"a": [1, 2.5, None, True, "x"]}) == '{"a":[1,2.5,null,true,"x"]}'
