"""A small HTTP server speaking TF Serving's REST API for one model (standard library only).

Routes (as TF Serving; names and paths case-insensitive like its regexes):

- `POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict` — row or columnar predict.
- `GET  /v1/models/<name>[/versions/<v>|/labels/<l>]` — model status.
- `GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata` — signature metadata.

Every fault is answered with `{"error": "<message>"}` and TF Serving's status code: 400 for
malformed requests and bad inputs, 404 for unknown models or versions, 413 for bodies over
`max_body_bytes` (TF Serving has no such limit), 411 without a Content-Length. Request bodies
may be gzip-compressed (`Content-Encoding: gzip`); the limit applies after decompression too.
`:classify` and `:regress` answer 400 (this model has no such signatures).
"""

import http.server
import json
import logging
import re
import socketserver
import urllib.parse
import zlib
from typing import TYPE_CHECKING

from ave_tf.serving import rest_api
from ave_tf.serving.rest_api import RestError, invalid_argument

if TYPE_CHECKING:  # the repository imports TensorFlow; `serve` checks its flags first
    from ave_tf.serving.repository import ModelRepository

DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
"""Default request body limit: 16 videos of visual features are ~80 MB of JSON."""

_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?",
    re.IGNORECASE,
)


def _model_spec(match) -> tuple[str, int | None, str | None]:
    name = urllib.parse.unquote(match.group(1) or "")
    version = int(match.group(2)) if match.group(2) else None
    label = urllib.parse.unquote(match.group(3)) if match.group(3) else None
    return name, version, label


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ave-tf-serving"
    timeout = 60  # seconds a client may take to send its request

    server: "ModelServer"

    def log_message(self, format, *args):  # noqa: A002 (the base class names it so)
        logging.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, document: dict, close: bool = False) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, error: RestError, close: bool = False) -> None:
        self._send(error.status, {"error": error.message}, close=close)

    def _read_body(self) -> bytes:
        limit = self.server.max_body_bytes
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise RestError(411, "Chunked request bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RestError(411, "Missing Content-Length header")
        try:
            length = int(length_text)
        except ValueError:
            raise invalid_argument(f"Invalid Content-Length: {length_text!r}") from None
        if length < 0:
            raise invalid_argument(f"Invalid Content-Length: {length_text!r}")
        if length > limit:
            self._unread_bytes = length
            raise RestError(
                413, f"Request body of {length} bytes exceeds the limit of {limit} bytes"
            )
        body = self.rfile.read(length)
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding == "gzip":
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                body = decompressor.decompress(body, limit + 1)
            except zlib.error as error:
                raise invalid_argument(f"Failed to decompress gzip request body: {error}") from None
            if len(body) > limit or decompressor.unconsumed_tail:
                raise RestError(
                    413, f"Decompressed request body exceeds the limit of {limit} bytes"
                )
        elif encoding not in ("identity", ""):
            raise RestError(415, f"Unsupported Content-Encoding: {encoding}")
        return body

    _unread_bytes = 0
    _DRAIN_FACTOR = 4
    _DRAIN_MIN_BYTES = 512 * 1024 * 1024
    _DRAIN_TIMEOUT = 5.0

    def _drain(self) -> None:
        """Reads (and drops) an unread body after answering, up to a bound.

        Clients such as urllib send the whole body before reading the answer; closing at
        once would cut them off with a broken pipe instead of the 413 they should see.
        """
        bound = max(self._DRAIN_FACTOR * self.server.max_body_bytes, self._DRAIN_MIN_BYTES)
        remaining = min(self._unread_bytes, bound)
        self._unread_bytes = 0
        try:
            self.connection.settimeout(self._DRAIN_TIMEOUT)
            while remaining > 0:
                chunk = self.rfile.read1(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            pass

    def do_POST(self):  # noqa: N802 (http.server's naming)
        path = urllib.parse.urlsplit(self.path).path
        try:
            body = self._read_body()
        except RestError as error:
            # The body may be unread: close so the next request starts clean.
            self._send_error(error, close=error.status in (411, 413))
            self._drain()
            return
        try:
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
            self._send(200, self._predict(name, version, label, body))
        except RestError as error:
            self._send_error(error)
        except Exception as error:  # keep serving whatever went wrong
            logging.exception("predict failed")
            self._send(500, {"error": f"Internal: {type(error).__name__}: {error}"})

    def _predict(self, name, version, label, body: bytes) -> dict:
        repository = self.server.repository
        model = repository.resolve(name, version, label)
        doc = rest_api.parse_json(body)
        signature = rest_api.signature_name(doc)
        if signature not in model.inputs:
            raise invalid_argument(
                f'Serving signature name: "{signature}" not found in signature def'
            )
        strict = b"true" in body or b"false" in body
        arrays, request_format = rest_api.request_inputs(
            doc, model.inputs[signature], strict=strict
        )
        del doc
        outputs = model.predict(signature, arrays)
        return rest_api.response_document(outputs, request_format)

    def do_GET(self):  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        try:
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
        except RestError as error:
            self._send_error(error)

    def _unsupported(self):
        path = urllib.parse.urlsplit(self.path).path
        if self.headers.get("Content-Length"):
            self.close_connection = True
        self._send_error(self._malformed(self.command, path), close=True)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = _unsupported  # noqa: N815

    @staticmethod
    def _malformed(method: str, path: str) -> RestError:
        if not path.lower().startswith("/v1/"):
            return RestError(404, f"Not found: {method} {path}")
        return invalid_argument(f"Malformed request: {method} {path}")


class ModelServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Threaded HTTP server serving one `ModelRepository`.

    Args:
        address: `(host, port)`; port 0 picks a free port (see `port`).
        repository: the model to serve (call its `start()` first).
        max_body_bytes: request bodies larger than this get a 413.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        repository: "ModelRepository",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        self.repository = repository
        self.max_body_bytes = max_body_bytes
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"
