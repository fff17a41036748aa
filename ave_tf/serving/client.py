"""A TF Serving REST client for the PSP signature (standard library HTTP, orjson).

    client = ServingClient("http://127.0.0.1:8501", "psp_fully")
    result = client.predict(audio, visual)          # audio (B, 10, 128), visual (B, 10, 7, 7, 512)
    result.segment_classes                          # (B, 10) int
    client.status()                                 # [ModelVersionStatus(version=1, state=...)]

Requests are columnar (`{"inputs": ...}`) by default or row (`{"instances": ...}`), optionally
binary (`binary=True`: the `predict_bytes` signature, each video's features as one
`{"b64": ...}` value of raw little-endian float32, ~1.3 MB instead of ~5 MB of JSON numbers),
gzip-compressed, pinned to a version (`/versions/N`) or a label (`/labels/L`). Each thread
keeps its HTTP/1.1 connection open between requests (a connection the server closed while idle
is reopened once). 503 and 504 answers are retried with exponential backoff. Answers with
`{"error": ...}` raise a `ServingError` subclass carrying the HTTP status and the server's
message. Inputs are checked before sending (shape, finite values): TF Serving itself would
accept NaN/Infinity and answer with NaN probabilities, so the client refuses them with
`ave_tf.inputs.InvalidInputError`. JSON is encoded and decoded with orjson
(`rest_format.dumps`/`loads`): arrays go out without `tolist()`. The module imports NumPy, orjson
and pybase64, never TensorFlow (`grpc_client` needs it for TF Serving's protos).
"""

import dataclasses
import gzip
import http.client
import threading
import time
import urllib.parse
from collections.abc import Mapping

import numpy as np

from ave_tf import ave
from ave_tf.inputs import check_inputs
from ave_tf.serving import rest_format

RETRY_STATUSES = (503, 504)
BYTES_SIGNATURE = "predict_bytes"
"""The binary-input signature of `ave_tf.export` (named there too; not imported: TensorFlow)."""
BYTES_SUFFIX = "_bytes"


class ServingError(Exception):
    """An error answer from the server.

    Attributes:
        status: HTTP status code.
        message: the server's `{"error": ...}` text (or the raw body when not JSON).
        url: the request URL.
    """

    def __init__(self, status: int, message: str, url: str):
        super().__init__(f"HTTP {status} from {url}: {message}")
        self.status = status
        self.message = message
        self.url = url


class BadRequestError(ServingError):
    """400: the request or its inputs were refused."""


class ModelNotFoundError(ServingError):
    """404: unknown model, version or path."""


class PayloadTooLargeError(ServingError):
    """413: the body is over the server's limit."""


class ServerUnavailableError(ServingError):
    """503/504 after every retry, or the server could not be reached (status 0)."""


def error_for_status(status: int, message: str, url: str) -> ServingError:
    """The typed error for an HTTP status."""
    kinds = {400: BadRequestError, 404: ModelNotFoundError, 413: PayloadTooLargeError}
    if status in RETRY_STATUSES:
        return ServerUnavailableError(status, message, url)
    return kinds.get(status, ServingError)(status, message, url)


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The PSP signature's outputs for a batch of videos.

    Attributes:
        segment_probabilities: (B, 10, 29) float32.
        segment_classes: (B, 10) int.
        is_event: (B, 10) bool.
        video_class: (B,) int, the video's category 0..27.
        class_names: the 29 class names.
    """

    segment_probabilities: np.ndarray
    segment_classes: np.ndarray
    is_event: np.ndarray
    video_class: np.ndarray
    class_names: tuple[str, ...]

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, np.ndarray]) -> "Prediction":
        """From named output arrays (REST answer or in-process signature call)."""
        missing = {"segment_probabilities", "segment_classes", "is_event", "video_class"} - set(
            outputs
        )
        if missing:
            raise ValueError(f"answer lacks outputs {sorted(missing)}; got {sorted(outputs)}")
        names = outputs.get("class_names")
        if names is not None and np.asarray(names).size:
            first = np.asarray(names).reshape(-1, np.asarray(names).shape[-1])[0]
            class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in first)
        else:
            class_names = ave.CLASS_NAMES
        return cls(
            segment_probabilities=np.asarray(outputs["segment_probabilities"], np.float32),
            segment_classes=np.asarray(outputs["segment_classes"]).astype(np.int64),
            is_event=np.asarray(outputs["is_event"]).astype(bool),
            video_class=np.asarray(outputs["video_class"]).astype(np.int64),
            class_names=class_names,
        )

    def __len__(self) -> int:
        return self.segment_classes.shape[0]


@dataclasses.dataclass(frozen=True)
class ModelVersionStatus:
    """One entry of `GET /v1/models/<name>`: version, state ("AVAILABLE", "END", ...)."""

    version: int
    state: str
    error_code: str
    error_message: str

    @classmethod
    def from_json(cls, entry: Mapping) -> "ModelVersionStatus":
        """From one `model_version_status` entry of the REST JSON (gRPC's answer, converted to
        JSON, has the same shape): a missing `status` means OK."""
        status = entry.get("status", {})
        return cls(
            version=int(entry["version"]),
            state=entry["state"],
            error_code=status.get("error_code", "OK"),
            error_message=status.get("error_message", ""),
        )


def check_pin(version: int | None, label: str | None) -> None:
    """A client pins a model version or a version label, not both (ValueError)."""
    if version is not None and label is not None:
        raise ValueError(f"pin a version or a label, not both; got {version} and {label!r}")


def binary_inputs(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`predict_bytes`' inputs for float32 features: `<name>_bytes`, an object array (batch,) of
    `{"b64": ...}` values, each one video's features as raw little-endian float32."""
    return {
        name + BYTES_SUFFIX: np.array(
            [rest_format.b64_value(np.ascontiguousarray(video, "<f4")) for video in array],
            dtype=object,
        )
        for name, array in inputs.items()
    }


class ServingClient:
    """Calls one model of a TF Serving (or its local stand-in: docs/serving.md) REST endpoint.

    Args:
        server: base URL, e.g. `http://127.0.0.1:8501`.
        model: model name, e.g. `psp_fully`.
        version: pin a version (`/versions/N`); exclusive with `label`.
        label: pin a version label (`/labels/L`).
        request_format: `"columnar"` (default) or `"row"`.
        compress: gzip request bodies (`Content-Encoding: gzip`).
        binary: send the features as base64 raw float32 to the `predict_bytes` signature
            (`ave_tf.export`) instead of JSON numbers to `signature`.
        signature: signature name (default `serving_default`; `predict_bytes` with `binary`).
        timeout: seconds per HTTP attempt.
        retries: extra attempts after a 503/504 or an unreachable server.
        backoff: seconds before the first retry, doubled each time.
    """

    def __init__(
        self,
        server: str,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        request_format: str = rest_format.COLUMNAR,
        compress: bool = False,
        binary: bool = False,
        signature: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
    ):
        check_pin(version, label)
        if request_format not in rest_format.FORMATS:
            raise ValueError(
                f"request_format must be one of {rest_format.FORMATS}; got {request_format!r}"
            )
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"server must be a URL like http://HOST:8501; got {server!r}")
        self.server = server.rstrip("/")
        self.model = model
        self.version = version
        self.label = label
        self.request_format = request_format
        self.compress = compress
        self.binary = binary
        default = BYTES_SIGNATURE if binary else rest_format.DEFAULT_SIGNATURE
        self.signature = signature or default
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._local = threading.local()

    def model_url(self) -> str:
        """`<server>/v1/models/<model>[/versions/N|/labels/L]`."""
        url = f"{self.server}/v1/models/{urllib.parse.quote(self.model, safe='')}"
        if self.version is not None:
            url += f"/versions/{int(self.version)}"
        elif self.label is not None:
            url += f"/labels/{urllib.parse.quote(self.label, safe='')}"
        return url

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection to the server (opened on first use, then kept)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            parsed = urllib.parse.urlsplit(self.server)
            secure = parsed.scheme == "https"
            kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
            connection = self._local.connection = kind(parsed.netloc, timeout=self.timeout)
        return connection

    def _exchange(self, method: str, url: str, body: bytes | None, headers) -> tuple[int, bytes]:
        """One HTTP request on this thread's kept-alive connection: (status, body).

        A connection that was already open may have been closed by the server while idle
        (its keep-alive timeout, a restart): that failure is retried once on a new one.
        """
        parsed = urllib.parse.urlsplit(url)
        target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        while True:
            connection = self._connection()
            reused = connection.sock is not None
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except BaseException as error:
                connection.close()
                if reused and isinstance(error, ConnectionError | http.client.HTTPException):
                    continue  # the server had closed the kept connection while it was idle
                raise
            if response.will_close:
                connection.close()
            return response.status, data

    def request(self, method: str, url: str, body: bytes | None = None, headers=None) -> dict:
        """Sends one request (with retries) and returns the decoded JSON answer."""
        headers = dict(headers or {})
        attempt = 0
        while True:
            try:
                status, raw = self._exchange(method, url, body, headers)
            except (OSError, http.client.HTTPException) as error:
                failure = ServerUnavailableError(0, f"cannot reach server: {error}", url)
            else:
                if 200 <= status < 300:
                    return rest_format.loads(raw)
                text = raw.decode("utf-8", "replace")
                try:
                    message = rest_format.loads(raw).get("error", text)
                except (ValueError, AttributeError):
                    message = text
                failure = error_for_status(status, message, url)
            if not isinstance(failure, ServerUnavailableError) or attempt >= self.retries:
                raise failure
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def encode_request(self, audio, visual) -> tuple[bytes, dict]:
        """The predict body and headers for a batch (checked, then JSON, maybe gzip)."""
        audio, visual = check_inputs(audio, visual)
        inputs = {"audio": audio, "visual": visual}
        if self.binary:
            inputs = binary_inputs(inputs)
        document = rest_format.predict_request_document(inputs, self.request_format, self.signature)
        body = rest_format.dumps(document)
        headers = {"Content-Type": "application/json"}
        if self.compress:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    def predict_outputs(self, audio, visual) -> dict[str, np.ndarray]:
        """Raw named output arrays of `:predict` for a batch of videos."""
        body, headers = self.encode_request(audio, visual)
        answer = self.request("POST", self.model_url() + ":predict", body, headers)
        try:
            return rest_format.response_outputs(answer)
        except ValueError as error:
            raise ServingError(200, f"unexpected answer: {error}", self.model_url()) from None

    def predict(self, audio, visual) -> Prediction:
        """Predictions for a batch: audio (B, 10, 128), visual (B, 10, 7, 7, 512)."""
        return Prediction.from_outputs(self.predict_outputs(audio, visual))

    def status(self) -> list[ModelVersionStatus]:
        """The model's versions and their states (`GET /v1/models/<name>`)."""
        answer = self.request("GET", self.model_url())
        return [
            ModelVersionStatus.from_json(entry) for entry in answer.get("model_version_status", [])
        ]

    def metadata(self) -> dict:
        """The model's signature metadata (`GET .../metadata`), as TF Serving's JSON."""
        return self.request("GET", self.model_url() + "/metadata")

    def wait_until_available(self, timeout: float = 60.0, interval: float = 0.5) -> int:
        """Polls status until a version is AVAILABLE; returns it (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                available = [s.version for s in self.status() if s.state == "AVAILABLE"]
                if available:
                    return max(available)
            except ServingError as error:
                last = error
            time.sleep(interval)
        raise TimeoutError(f"{self.model_url()} not available after {timeout} s ({last})")
