"""Serves an exported model over TF Serving's REST API, and its gRPC API with `--grpc_port`
(a stand-in for tensorflow_model_server).

    python -m tfserving_standin.serve --model_base_path saved_models/psp_fully \
        --port 8501 --grpc_port 8500
    #> serving psp_fully version(s) [1] at http://127.0.0.1:8501/v1/models/psp_fully
    #> gRPC (TF Serving's PredictionService, ModelService) at 127.0.0.1:8500

Production serving is TensorFlow Serving (see docs/serving.md); this server
follows its REST API for this model so that machines without it (and the tests) can exercise
the same contract. It serves the highest integer version under `--model_base_path` and picks
up new versions while running. Bad input (a missing folder, a malformed label, a label naming
a version that did not load, a port in use): one `error:` line, exit 2, nothing left bound.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

import contextlib
import pathlib
import signal
import threading

from absl import flags

from ave_tf.errors import UsageError
from tfserving_standin.server import Limits, ModelServer

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this command's flags (only when run as a program: importing defines none)."""
    flags.DEFINE_string("model_base_path", None, "Directory holding integer version directories.")
    flags.DEFINE_string(
        "model_name", None, "Name in URLs; default: the base path's last component."
    )
    flags.DEFINE_string("host", "127.0.0.1", "Address to bind (0.0.0.0 exposes it to the network).")
    flags.DEFINE_integer(
        "port", 8501, "REST port (TF Serving's default REST port is 8501).", lower_bound=0
    )
    defaults = Limits()
    flags.DEFINE_integer(
        "grpc_port",
        None,
        "Also answer TF Serving's gRPC API (PredictionService, ModelService) on this port "
        "(TF Serving's default gRPC port is 8500; 0: a free port). Unset: no gRPC.",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "grpc_max_message_bytes",
        None,
        "Larger gRPC requests get RESOURCE_EXHAUSTED (default 64 MiB: 64 videos of features).",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "max_body_bytes",
        defaults.max_body_bytes,
        "Larger request bodies (gzip ones once decompressed) get HTTP 413.",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "max_batch_size",
        defaults.max_batch_size,
        "A predict body holding more JSON values than this many examples need gets HTTP 413 "
        "before it is parsed (bounds each request's memory).",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "max_workers",
        defaults.max_workers,
        "Requests decoded and predicted at the same time.",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "max_queued",
        defaults.max_queued,
        "Requests waiting for a worker; more get HTTP 503 (clients retry).",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "max_pending_body_bytes",
        None,
        "Request bodies held in memory at once; a body that does not fit gets HTTP 503 "
        "(default: twice --max_body_bytes).",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "max_connections",
        defaults.max_connections,
        "Open connections; more are answered HTTP 503 and closed.",
        lower_bound=1,
    )
    flags.DEFINE_float(
        "request_timeout",
        defaults.request_timeout,
        "Seconds to receive a whole request, first byte to last (then HTTP 408, closed).",
        lower_bound=0.001,
    )
    flags.DEFINE_float(
        "idle_timeout",
        defaults.idle_timeout,
        "Seconds a kept-alive connection may wait for its next request.",
        lower_bound=0.001,
    )
    flags.DEFINE_float(
        "file_system_poll_wait_seconds", 1.0, "Seconds between looks for new versions (0: never)."
    )
    flags.DEFINE_bool("all_versions", False, "Serve every version on disk, not only the highest.")
    flags.DEFINE_list(
        "version_labels", [], "Version labels as LABEL=VERSION, e.g. stable=1,canary=2."
    )
    flags.mark_flag_as_required("model_base_path")


def parse_labels(items: list[str]) -> dict[str, int]:
    """`["stable=1"]` -> `{"stable": 1}`; a malformed item is a UsageError naming it."""
    labels = {}
    for item in items:
        label, sep, version = item.partition("=")
        if not sep or not label or not version.strip().isdigit():
            raise UsageError(f"--version_labels item must be LABEL=VERSION; got {item!r}")
        labels[label.strip()] = int(version)
    return labels


def limits_from_flags() -> Limits:
    """The server's `Limits` from this command's flags (UsageError when they disagree)."""
    try:
        return Limits(
            max_body_bytes=FLAGS.max_body_bytes,
            max_batch_size=FLAGS.max_batch_size,
            max_workers=FLAGS.max_workers,
            max_queued=FLAGS.max_queued,
            max_pending_body_bytes=FLAGS.max_pending_body_bytes,
            max_connections=FLAGS.max_connections,
            request_timeout=FLAGS.request_timeout,
            idle_timeout=FLAGS.idle_timeout,
        )
    except ValueError as error:
        raise UsageError(f"--{error}") from None


def _grpc_server(repository):
    """The gRPC server bound to `--grpc_port` (not started), sharing the REST server's
    repository."""
    from tfserving_standin.grpc_server import (  # gRPC: only with --grpc_port
        DEFAULT_MAX_MESSAGE_BYTES,
        GrpcModelServer,
    )

    return GrpcModelServer(
        (FLAGS.host, FLAGS.grpc_port),
        repository,
        max_message_bytes=FLAGS.grpc_max_message_bytes or DEFAULT_MAX_MESSAGE_BYTES,
        max_batch_size=FLAGS.max_batch_size,
    )


def _bound(flag: str, port: int, bind):
    """`bind()`'s server; a port it cannot bind (in use, not allowed) is a UsageError."""
    try:
        return bind()
    except OSError as error:
        raise UsageError(f"{flag} {port}: {error}") from None


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}")
    base_path = pathlib.Path(FLAGS.model_base_path)
    if not base_path.is_dir():
        raise UsageError(f"--model_base_path {base_path} is not a directory")
    labels = parse_labels(FLAGS.version_labels)
    limits = limits_from_flags()
    from tfserving_standin.repository import (  # TensorFlow: after the checks
        ModelRepository,
        UnavailableLabelError,
    )

    name = FLAGS.model_name or base_path.resolve().name
    repository = ModelRepository(
        name,
        base_path,
        all_versions=FLAGS.all_versions,
        labels=labels,
        poll_seconds=FLAGS.file_system_poll_wait_seconds,
    )
    # Both ports are bound before the model loads (a port in use is an error at once); on
    # any error the ones already bound are released.
    with contextlib.ExitStack() as running:
        server = _bound(
            "--port",
            FLAGS.port,
            lambda: ModelServer((FLAGS.host, FLAGS.port), repository, limits=limits),
        )
        running.callback(server.server_close)
        grpc_server = None
        if FLAGS.grpc_port is not None:
            grpc_server = _bound("--grpc_port", FLAGS.grpc_port, lambda: _grpc_server(repository))
            running.callback(grpc_server.stop)
        try:
            repository.start()
        except UnavailableLabelError as error:
            raise UsageError(f"--version_labels: {error}") from None
        running.callback(repository.stop)
        print(
            f"serving {name} version(s) {repository.versions() or 'none yet'} at "
            f"{server.url}/v1/models/{name}",
            flush=True,
        )
        if grpc_server is not None:
            grpc_server.start()
            print(
                f"gRPC (TF Serving's PredictionService, ModelService) at {grpc_server.target}",
                flush=True,
            )
        # SIGTERM stops the loop cleanly (shutdown() must run outside serve_forever's thread).
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    define_flags()
    cli.run(main)
