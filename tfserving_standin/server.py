"""A small HTTP server speaking TF Serving's REST API for one model (standard library HTTP).

Routes (as TF Serving; names and paths case-insensitive like its regexes):

- `POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict` — row or columnar predict.
- `GET  /v1/models/<name>[/versions/<v>|/labels/<l>]` — model status.
- `GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata` — signature metadata.

Every fault is answered with `{"error": "<message>"}` and TF Serving's status code: 400 for
malformed requests and bad inputs, 404 for unknown models or versions, 413 for bodies over
`max_body_bytes` or holding more values than `max_batch_size` examples need (TF Serving has
neither limit), 411 without a Content-Length. Request bodies may be gzip-compressed
(`Content-Encoding: gzip`); the limit applies after decompression too. `:classify` and
`:regress` answer 400 (this model has no such signatures).

The work is bounded (`Limits`): at most `max_connections` open connections, `max_workers`
requests decoded and predicted at once with `max_queued` more waiting (503 beyond, which
clients retry), at most `max_pending_body_bytes` of request bodies held in memory, and a
deadline for receiving each whole request (a client sending a byte now and then is cut off).
HTTP framing is strict: one decimal Content-Length, no Transfer-Encoding but a lone `chunked`
(answered 411), a GET body read (or refused) so it is never taken for the next request.
The standard library's server stays on purpose: an h11 transport, measured as a prototype,
took over only these framing checks (~40 lines) yet needed a connection loop of its own
(request line, keep-alive, 100-continue, error answers) and answered no faster.
"""

import dataclasses
import enum
import http.server
import io
import logging
import re
import socket
import socketserver
import threading
import time
import urllib.parse
import zlib
from typing import TYPE_CHECKING

from ave_tf.serving import rest_format
from tfserving_standin import rest_api
from tfserving_standin.rest_api import RestError, clipped, invalid_argument

if TYPE_CHECKING:  # the repository imports TensorFlow; `serve` checks its flags first
    from tfserving_standin.repository import ModelRepository

DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
"""Default request body limit: 16 videos of visual features are ~80 MB of JSON."""

_MAX_VERSION = 2**63 - 1  # TF Serving's versions are int64

_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?",
    re.IGNORECASE,
)
_CONTENT_LENGTH = re.compile(r"[0-9]+")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one server process takes on at once (see docs/serving.md, "Limits").

    Attributes:
        max_body_bytes: request bodies (and gzip bodies once decompressed) above this get 413.
        max_batch_size: a predict body holding more JSON values than this many examples need
            gets 413 before it is parsed (bounds the parse's memory).
        max_workers: requests decoded, parsed and predicted at the same time.
        max_queued: requests waiting for a worker; more get 503.
        max_pending_body_bytes: request bodies held in memory (received, not yet decoded) at
            once; a request whose Content-Length does not fit gets 503. Default (None):
            twice `max_body_bytes`; never less than it.
        max_connections: open connections; more are answered 503 and closed.
        request_timeout: seconds to receive a whole request, first byte to last.
        idle_timeout: seconds a kept-alive connection may wait for its next request, and
            for the client to take an answer.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_size: int = 32
    max_workers: int = 4
    max_queued: int = 16
    max_pending_body_bytes: int | None = None
    max_connections: int = 256
    request_timeout: float = 60.0
    idle_timeout: float = 60.0

    def __post_init__(self):
        if self.max_pending_body_bytes is None:
            object.__setattr__(self, "max_pending_body_bytes", 2 * self.max_body_bytes)
        if self.max_pending_body_bytes < self.max_body_bytes:
            raise ValueError(
                f"max_pending_body_bytes ({self.max_pending_body_bytes}) must be at least "
                f"max_body_bytes ({self.max_body_bytes}): a body of the limit would never fit"
            )


class _WorkGate:
    """At most `workers` holders at once and `queued` waiting; anyone beyond gets a 503."""

    def __init__(self, workers: int, queued: int):
        self._slots = threading.Semaphore(workers)
        self._lock = threading.Lock()
        self._waiting = 0
        self._workers, self._queued = workers, queued

    def acquire(self, timeout: float) -> None:
        if self._slots.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self._queued:
                raise RestError(
                    503,
                    f"Server busy: {self._workers} requests running and {self._queued} "
                    "waiting; retry later",
                )
            self._waiting += 1
        try:
            if not self._slots.acquire(timeout=timeout):
                raise RestError(503, f"Server busy: no worker free within {timeout:g} s")
        finally:
            with self._lock:
                self._waiting -= 1

    def release(self) -> None:
        self._slots.release()


class _ByteBudget:
    """A count of bytes that may be held at once; a reservation that does not fit is a 503.

    Request bodies reserve what has arrived, chunk by chunk, not what their Content-Length
    announces: a client announcing 256 MiB and stalling holds only what it sent.
    """

    def __init__(self, limit: int):
        self._limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> None:
        with self._lock:
            if self._used + size > self._limit:
                raise RestError(503, "Server busy: too many request bodies in flight; retry later")
            self._used += size

    def release(self, size: int) -> None:
        with self._lock:
            self._used -= size


class _RequestTimeout(TimeoutError):
    """The whole-request deadline passed while the request was being received."""


class _Evicted(Exception):
    """The server closed this connection's reading side to give its slot to a new one."""


class _Stage(enum.IntEnum):
    """Where a connection is; the lower, the sooner it is evicted when connections run out."""

    IDLE = 0  # waiting for a request's first byte (a new or kept-alive connection)
    HEADERS = 1  # receiving the request line and headers
    BODY = 2  # receiving the body
    BUSY = 3  # the whole request is in: decoding, predicting, answering (never evicted)


_STALLED_SECONDS = 1.0
"""A connection receiving a body is evicted only once it has sent nothing for this long."""


class _DeadlineReader(io.RawIOBase):
    """Socket reads bounded by the handler's whole-request deadline.

    Before a request's first byte a read may wait `idle_timeout`; the first byte starts the
    deadline, and every later read may only wait for what is left of it.
    """

    def __init__(self, handler: "_Handler"):
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        handler = self._handler
        limits = handler.server.limits
        if handler.deadline is None:
            timeout = limits.idle_timeout
        else:
            timeout = handler.deadline - time.monotonic()
            if timeout <= 0:
                raise _RequestTimeout()
        handler.connection.settimeout(timeout)
        try:
            size = handler.connection.recv_into(buffer)
        except TimeoutError:
            if handler.deadline is None:
                raise
            raise _RequestTimeout() from None
        if not size and handler.evicted and handler.stage is not _Stage.IDLE:
            raise _Evicted()
        if size:
            handler.last_byte_at = time.monotonic()
            if handler.deadline is None:
                handler.deadline = handler.last_byte_at + limits.request_timeout
                handler.enter(_Stage.HEADERS)
        return size


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    if len(text) > len(str(_MAX_VERSION)) or int(text) > _MAX_VERSION:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise invalid_argument(f"Failed to convert version: {shown} to numeric.")
    return int(text)


def _model_spec(match) -> tuple[str, int | None, str | None]:
    name = urllib.parse.unquote(match.group(1) or "")
    label = urllib.parse.unquote(match.group(3)) if match.group(3) else None
    return name, _version(match.group(2)), label


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ave-tf-serving"
    timeout = None  # `_DeadlineReader` sets the socket timeout before every read
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers (40 ms on Linux) on every answer.
    disable_nagle_algorithm = True
    deadline: float | None = None
    stage = _Stage.IDLE
    stage_since = last_byte_at = 0.0
    evicted = False
    _MAX_LEADING_EMPTY_LINES = 8
    """RFC 9112 2.2: empty lines before a request line are ignored (up to this many)."""
    _MAX_LINE_BYTES = 65536

    server: "ModelServer"

    def setup(self):
        super().setup()
        self.rfile = io.BufferedReader(_DeadlineReader(self))
        self.enter(_Stage.IDLE)
        self.server.track(self)

    def finish(self):
        self.server.untrack(self)
        super().finish()

    def enter(self, stage: _Stage) -> None:
        self.stage, self.stage_since = stage, time.monotonic()

    def eviction_rank(self, now: float) -> tuple | None:
        """This connection's place in the eviction order (lowest first), None when it must
        not be evicted: idle ones first, then ones still sending headers (longest first),
        then ones whose body stalled for `_STALLED_SECONDS`."""
        if self.evicted or self.stage is _Stage.BUSY:
            return None
        if self.stage is _Stage.BODY:
            if now - self.last_byte_at < _STALLED_SECONDS:
                return None
            return (self.stage, self.last_byte_at)
        return (self.stage, self.stage_since)

    def evict(self) -> None:
        """Ends this connection's reading (from another thread): an idle connection closes,
        one in the middle of a request is answered 503 and closed."""
        self.evicted = True
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def handle_one_request(self):
        self.deadline = None  # the next request's first byte starts its deadline
        self.enter(_Stage.IDLE)
        try:
            super().handle_one_request()
        except _Evicted:  # while still in the request line or headers
            self.close_connection = True
            try:
                self.connection.sendall(_BUSY_ANSWER)
            except OSError:
                pass

    def parse_request(self):
        """The base class's parsing, after skipping empty lines before the request line
        (RFC 9112 2.2), and refusing HTTP/0.9 (a request line without a version, which has
        no headers: the base class would wait for them)."""
        for _ in range(self._MAX_LEADING_EMPTY_LINES):
            if self.raw_requestline not in (b"\r\n", b"\n"):
                break
            self.raw_requestline = self.rfile.readline(self._MAX_LINE_BYTES + 1)
            if len(self.raw_requestline) > self._MAX_LINE_BYTES:
                self.requestline = ""
                self.send_error(414)
                return False
        if len(self.raw_requestline.split()) == 2:
            self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            self.command = None
            self.send_error(400, "HTTP/0.9 requests are not supported; send HTTP/1.0 or 1.1")
            return False
        if not super().parse_request():
            return False
        self.enter(_Stage.BODY)
        return True

    def log_message(self, format, *args):  # noqa: A002 (the base class names it so)
        logging.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, document: dict, close: bool = False) -> None:
        """Answers `document` as JSON (the headers only for HEAD)."""
        body = rest_format.dumps(document)
        self.connection.settimeout(self.server.limits.idle_timeout)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, error: RestError, close: bool = False) -> None:
        self._send(error.status, rest_api.error_document(error.message), close=close)

    def send_error(self, code, message=None, explain=None):
        """The base class's answer to a malformed request line or headers, as JSON (always
        with an HTTP/1.1 status line: this server speaks no HTTP/0.9)."""
        if getattr(self, "request_version", "") in ("", "HTTP/0.9"):
            self.request_version = self.protocol_version
        self._send_error(RestError(code, message or http.HTTPStatus(code).phrase), close=True)

    def _content_length(self, limit: int) -> int:
        """The body's length from strictly checked framing headers (RestError otherwise)."""
        keep_alive = not self.close_connection
        self.close_connection = True  # until the body's end is known
        encodings = self.headers.get_all("Transfer-Encoding", [])
        if encodings:
            if [e.strip().lower() for e in encodings] == ["chunked"]:
                raise RestError(
                    411, "Chunked request bodies are not supported; send Content-Length"
                )
            raise RestError(501, f"Unsupported Transfer-Encoding: {', '.join(encodings)}")
        values = self.headers.get_all("Content-Length", [])
        if not values:
            if self.command == "POST":
                raise RestError(411, "Missing Content-Length header")
            self.close_connection = not keep_alive  # no body: the framing is known
            return 0
        texts = {value.strip(" \t") for value in values}  # RFC 9110's OWS: space and tab
        if len(texts) > 1 or not _CONTENT_LENGTH.fullmatch(next(iter(texts))):
            raise invalid_argument(f"Invalid Content-Length: {', '.join(map(repr, values))}")
        digits = next(iter(texts)).lstrip("0") or "0"
        length = int(digits) if len(digits) <= 20 else 10**20  # beyond any limit either way
        if length > limit:
            self._unread_bytes = length
            raise RestError(
                413, f"Request body of {length} bytes exceeds the limit of {limit} bytes"
            )
        self.close_connection = not keep_alive
        return length

    def _read_exactly(self, length: int) -> bytes:
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionResetError("the client closed the connection before its body ended")
        return body

    _CHUNK_BYTES = 1 << 20
    _reserved = 0

    def _read_body(self, length: int) -> bytearray:
        """The body, read as it arrives: each chunk is reserved in the server's pending-body
        budget (`_reserved` counts it; the caller releases it) before it is kept."""
        body = bytearray()
        while len(body) < length:
            chunk = self.rfile.read1(min(length - len(body), self._CHUNK_BYTES))
            if not chunk:
                raise ConnectionResetError("the client closed the connection before its body ended")
            self.server.pending_bodies.reserve(len(chunk))
            self._reserved += len(chunk)
            self._unread_bytes -= len(chunk)
            body += chunk
        self.enter(_Stage.BUSY)
        return body

    def _decoded(self, body: bytes) -> bytes:
        """The body after its Content-Encoding (gzip or none), within `max_body_bytes`."""
        limit = self.server.limits.max_body_bytes
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("identity", ""):
            return body
        if encoding != "gzip":
            raise RestError(415, f"Unsupported Content-Encoding: {encoding}")
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            decoded = decompressor.decompress(body, limit + 1)
        except zlib.error as error:
            raise invalid_argument(f"Failed to decompress gzip request body: {error}") from None
        if len(decoded) > limit or decompressor.unconsumed_tail:
            raise RestError(413, f"Decompressed request body exceeds the limit of {limit} bytes")
        if not decompressor.eof:
            raise invalid_argument("Failed to decompress gzip request body: truncated gzip data")
        if decompressor.unused_data:
            raise invalid_argument(
                f"Failed to decompress gzip request body: {len(decompressor.unused_data)} "
                "bytes after the end of the gzip stream"
            )
        return decoded

    _unread_bytes = 0
    _DRAIN_FACTOR = 4
    _DRAIN_MIN_BYTES = 512 * 1024 * 1024
    _DRAIN_TIMEOUT = 5.0
    _MAX_GET_BODY_BYTES = 64 * 1024

    def _drain(self) -> None:
        """Reads (and drops) an unread body after answering, up to a bound.

        Clients such as urllib send the whole body before reading the answer; closing at
        once would cut them off with a broken pipe instead of the 413 they should see.
        """
        bound = max(self._DRAIN_FACTOR * self.server.limits.max_body_bytes, self._DRAIN_MIN_BYTES)
        remaining = min(self._unread_bytes, bound)
        self._unread_bytes = 0
        try:
            self.deadline = time.monotonic() + self._DRAIN_TIMEOUT
            while remaining > 0:
                chunk = self.rfile.read1(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            pass

    def _answer(self, respond) -> None:
        """Runs `respond()` (which sends the answer); faults become their error answer, a
        fault before the body was read closes the connection (its framing is unknown)."""
        try:
            respond()
        except _Evicted:
            try:
                self._send_error(
                    RestError(503, "Server busy: too many connections; retry later"), True
                )
            except OSError:
                self.close_connection = True
        except RestError as error:
            self._send_error(error, close=self.close_connection or self._unread_bytes > 0)
            self._drain()
        except _RequestTimeout:
            timeout = self.server.limits.request_timeout
            try:
                self._send_error(RestError(408, f"Request not received within {timeout:g} s"), True)
            except OSError:
                self.close_connection = True
        except OSError:  # the client went away: its request cannot be read
            self.close_connection = True
        except Exception as error:  # keep serving whatever went wrong
            logging.exception("%s %s failed", self.command, self.path)
            try:
                self._send_error(RestError(500, f"Internal: {type(error).__name__}: {error}"), True)
            except OSError:
                self.close_connection = True

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self._answer(self._post)

    def _post(self) -> None:
        limits = self.server.limits
        length = self._content_length(limits.max_body_bytes)
        self._unread_bytes = length
        try:
            bodies = [self._read_body(length)]
            self.server.gate.acquire(timeout=limits.request_timeout)
            try:
                document = self._predict_document(bodies.pop())
            finally:
                self.server.gate.release()
        finally:
            self.server.pending_bodies.release(self._reserved)
            self._reserved = 0
        self._send(200, document)

    def _predict_document(self, body: bytearray) -> dict:
        """The answer to the predict request `body` (the caller holds no other reference to
        it: it is dropped once parsed)."""
        path = urllib.parse.urlsplit(self.path).path
        match = _PREDICT_PATH.fullmatch(path)
        if not match:
            raise self._malformed("POST", path)
        name, version, label = _model_spec(match)
        if match.group(4).lower() != "predict":
            method = match.group(4).lower()
            raise invalid_argument(
                f"Expected {method} signature method_name to be "
                f"tensorflow/serving/{method}. Was: tensorflow/serving/predict"
            )
        model = self.server.repository.resolve(name, version, label)
        body = self._decoded(body)
        max_batch = self.server.limits.max_batch_size
        per_example = [rest_api.example_counts(specs) for specs in model.inputs.values()]
        if per_example and None not in per_example:
            rest_api.check_json_counts(body, rest_api.body_bound(per_example, max_batch))
        doc = rest_api.parse_json(body)
        signature = rest_api.signature_name(doc)
        if signature not in model.inputs:
            raise invalid_argument(
                f'Serving signature name: "{clipped(signature)}" not found in signature def'
            )
        # Booleans among numbers are only caught in strict mode (see `rest_api.to_array`);
        # string inputs (b64) need no such scan of the body.
        numeric = any(spec.dtype.kind != "O" for spec in model.inputs[signature].values())
        strict = numeric and (b"true" in body or b"false" in body)
        del body
        arrays, request_format = rest_api.request_inputs(
            doc, model.inputs[signature], strict=strict, max_batch=max_batch
        )
        del doc
        outputs = model.predict(signature, arrays)
        return rest_api.response_document(outputs, request_format)

    def do_GET(self):  # noqa: N802
        self._answer(self._get)

    def _get(self) -> None:
        length = self._content_length(self._MAX_GET_BODY_BYTES)
        self._read_exactly(length)  # no meaning, but it must not pass for the next request
        path = urllib.parse.urlsplit(self.path).path
        match = _STATUS_PATH.fullmatch(path)
        if not match:
            raise self._malformed("GET", path)
        name, version, label = _model_spec(match)
        if not name:
            raise invalid_argument("Missing model name in request.")
        repository = self.server.repository
        if match.group(4):
            self._send(200, repository.metadata(name, version, label))
        else:
            self._send(200, repository.status(name, version, label))

    def _unsupported(self):
        path = urllib.parse.urlsplit(self.path).path
        if self.headers.get("Content-Length") or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
        self._send_error(self._malformed(self.command, path), close=True)

    do_HEAD = do_GET  # noqa: N815 (`_send` leaves the body out)
    do_PUT = do_DELETE = do_PATCH = _unsupported  # noqa: N815

    @staticmethod
    def _malformed(method: str, path: str) -> RestError:
        if not path.lower().startswith("/v1/"):
            return RestError(404, f"Not found: {method} {clipped(path)}")
        return invalid_argument(f"Malformed request: {method} {clipped(path)}")


_BUSY_BODY = b'{"error":"Server busy: too many connections; retry later"}'
_BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class ModelServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTP server serving one `ModelRepository`, a thread per connection, within `limits`.

    When `max_connections` are open, a new connection evicts one that has not sent a whole
    request (idle ones first, then ones still sending headers, then stalled bodies), so idle
    or slow connections cannot lock other clients out; only when every connection is busy
    with a request is the new one answered 503.

    Args:
        address: `(host, port)`; port 0 picks a free port (see `port`).
        repository: the model to serve (call its `start()` first).
        max_body_bytes: request bodies larger than this get a 413 (sets `limits`'s).
        limits: the other bounds (`Limits()` by default).
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        repository: "ModelRepository",
        max_body_bytes: int | None = None,
        limits: Limits | None = None,
    ):
        limits = limits or Limits()
        if max_body_bytes is not None:
            limits = dataclasses.replace(
                limits, max_body_bytes=max_body_bytes, max_pending_body_bytes=None
            )
        self.repository = repository
        self.limits = limits
        self.gate = _WorkGate(limits.max_workers, limits.max_queued)
        self.pending_bodies = _ByteBudget(limits.max_pending_body_bytes)
        self._connections = threading.BoundedSemaphore(limits.max_connections)
        self._handlers: set[_Handler] = set()
        self._handlers_lock = threading.Lock()
        super().__init__(address, _Handler)

    @property
    def max_body_bytes(self) -> int:
        return self.limits.max_body_bytes

    _EVICTION_WAIT_SECONDS = 1.0

    def track(self, handler: _Handler) -> None:
        with self._handlers_lock:
            self._handlers.add(handler)

    def untrack(self, handler: _Handler) -> None:
        with self._handlers_lock:
            self._handlers.discard(handler)

    def _evict_for_slot(self) -> bool:
        """Evicts the connection first in `_Handler.eviction_rank`'s order (one that has not
        sent a whole request) and waits for its slot; False when there is none to evict."""
        now = time.monotonic()
        with self._handlers_lock:
            ranked = [(h.eviction_rank(now), id(h), h) for h in self._handlers]
        ranked = [entry for entry in ranked if entry[0] is not None]
        if not ranked:
            return False
        min(ranked)[2].evict()
        return self._connections.acquire(timeout=self._EVICTION_WAIT_SECONDS)

    def process_request(self, request, client_address):
        if not self._connections.acquire(blocking=False) and not self._evict_for_slot():
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY_ANSWER)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"
