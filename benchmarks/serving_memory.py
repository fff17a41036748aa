"""Peak memory growth of the serving stand-in per hostile request kind, as a multiple of the body.

    python -m benchmarks.serving_memory   # every kind; writes BENCHMARKS.md "Serving memory"

Each kind runs in a fresh process holding a REST and a gRPC server (default `Limits`) on a
freshly initialised `psp_fully` export: the process's RSS is sampled every 5 ms while one
request is answered (peak minus the RSS before it; the body is built before) and again 2 s
after (what stays). Bodies are the worst the bounds let through or the issue-20 attacks.
"""

import gzip
import json
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

from absl import app, flags

from benchmarks.benchmarks_md import machine, write_section

FLAGS = flags.FLAGS
flags.DEFINE_string("kind", None, "Run one kind in this process (internal).")
flags.DEFINE_string("export_dir", None, "The export to serve (internal).")

MODEL = "psp_fully"
BATCH = 32


def _row_floats(text: bytes) -> bytes:
    """A valid 32-video row body whose every value is `text` (e.g. b"0.1234")."""
    audio = b"[" + b",".join([b"[" + b",".join([text] * 128) + b"]"] * 10) + b"]"
    cell = b"[" + b",".join([text] * 512) + b"]"
    grid = b"[" + b",".join([b"[" + b",".join([cell] * 7) + b"]"] * 7) + b"]"
    visual = b"[" + b",".join([grid] * 10) + b"]"
    instance = b'{"audio":' + audio + b',"visual":' + visual + b"}"
    return b'{"instances":[' + b",".join([instance] * BATCH) + b"]}"


def _b64_row() -> bytes:
    import numpy as np

    from ave_tf.serving import rest_format

    rng = np.random.default_rng(0)
    instance = {
        "audio_bytes": rest_format.b64_value(rng.random((10, 128), dtype=np.float32)),
        "visual_bytes": rest_format.b64_value(rng.random((10, 7, 7, 512), dtype=np.float32)),
    }
    return rest_format.dumps({"signature_name": "predict_bytes", "instances": [instance] * BATCH})


VALUES = 8_087_776 - 64  # within the value bound of 32 videos
REST_KINDS = {
    "valid row batch, 4-decimal floats (200)": lambda: _row_floats(b"0.1234"),
    "valid b64 batch (200)": _b64_row,
    "8.1 M floats `1e1` in one input (413 after parsing: too many examples)": lambda: (
        b'{"inputs":{"visual":0,"audio":[' + b",".join([b"1e1"] * VALUES) + b"]}}"
    ),
    "8.1 M integers `257` in one input (413 after parsing: too many examples)": lambda: (
        b'{"inputs":{"visual":0,"audio":[' + b",".join([b"257"] * VALUES) + b"]}}"
    ),
    "2.6 M bytes instances (413 before parsing)": lambda: (
        b'{"signature_name":"predict_bytes","instances":['
        + b",".join([b'{"audio_bytes":"","visual_bytes":""}'] * 2_600_000)
        + b"]}"
    ),
    "8.1 M one-char strings (413 before parsing)": lambda: (
        b'{"inputs":{"visual":0,"audio":[' + b",".join([b'"a"'] * VALUES) + b"]}}"
    ),
    "256 MiB of blanks, gzip (400; multiple of the decompressed body)": lambda: gzip.compress(
        b" " * (256 * 2**20 - 2) + b"{}", 9
    ),
}
GRPC_KINDS = {"gRPC: 2 x 15 M empty string_val (RESOURCE_EXHAUSTED)": 15_000_000}


def _one_kind(kind: str, export_dir: str) -> dict:
    import http.client

    from rss import PeakRss, rss_bytes  # tests/serving (on sys.path)

    from tfserving_standin.grpc_server import GrpcModelServer
    from tfserving_standin.repository import ModelRepository
    from tfserving_standin.server import ModelServer

    repository = ModelRepository(MODEL, pathlib.Path(export_dir) / MODEL, poll_seconds=0).start()
    server = ModelServer(("127.0.0.1", 0), repository)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    grpc_server = GrpcModelServer(("127.0.0.1", 0), repository).start()
    if kind in GRPC_KINDS:
        import grpc
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = MODEL, "predict_bytes"
        for name in ("audio_bytes", "visual_bytes"):
            tensor = request.inputs[name]
            tensor.dtype = 7  # DT_STRING
            tensor.tensor_shape.dim.add().size = GRPC_KINDS[kind]
            tensor.string_val.extend([b""] * GRPC_KINDS[kind])
        body = request.SerializeToString()
        del request
        channel = grpc.insecure_channel(grpc_server.target)
        predict = channel.unary_unary(
            "/tensorflow.serving.PredictionService/Predict",
            request_serializer=lambda data: data,
            response_deserializer=lambda data: data,
        )

        def send():
            try:
                predict(body, timeout=600)
                return "OK"
            except grpc.RpcError as error:
                return error.code().name

    else:
        body = REST_KINDS[kind]()
        headers = {"Content-Encoding": "gzip"} if "gzip" in kind else {}

        def send():
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
            connection.request("POST", f"/v1/models/{MODEL}:predict", body, headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            return str(response.status)

    time.sleep(1)
    with PeakRss() as peak:
        status = send()
    time.sleep(2)
    return {
        "kind": kind,
        "status": status,
        "body_bytes": len(body) if "gzip" not in kind else 256 * 2**20,
        "peak_growth_bytes": peak.growth_bytes,
        "stays_bytes": rss_bytes() - peak.start_bytes,
    }


def main(argv):
    root = pathlib.Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "tests" / "serving"))
    if FLAGS.kind:
        print(json.dumps(_one_kind(FLAGS.kind, FLAGS.export_dir)), flush=True)
        return
    import keras

    from ave_tf.export import export_saved_model
    from ave_tf.models import fully_supervised_model

    rows = []
    with tempfile.TemporaryDirectory() as directory:
        keras.utils.set_random_seed(1)
        export_saved_model(fully_supervised_model(), directory, MODEL)
        for kind in [*REST_KINDS, *GRPC_KINDS]:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.serving_memory",
                    f"--kind={kind}",
                    f"--export_dir={directory}",
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=root,
            )
            row = json.loads(result.stdout.strip().splitlines()[-1])
            print(row, flush=True)
            rows.append(row)
    lines = [
        f"Machine: {machine()}. `python -m benchmarks.serving_memory`: one request per fresh "
        "server process (default limits), peak RSS growth while it is answered and what stays "
        "2 s later, in MiB and as a multiple of the body.",
        "",
        "| request | answer | body MiB | peak growth MiB (x body) | stays MiB |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        mib = row["body_bytes"] / 2**20
        growth = row["peak_growth_bytes"] / 2**20
        lines.append(
            f"| {row['kind']} | {row['status']} | {mib:.1f} | {growth:.0f} "
            f"({growth / mib:.1f}x) | {row['stays_bytes'] / 2**20:.0f} |"
        )
    write_section("Serving memory", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
