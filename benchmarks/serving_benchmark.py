"""REST serving latency and throughput against the local server, next to in-process SavedModel.

    python benchmarks/serving_benchmark.py            # writes its section of BENCHMARKS.md

Exports a freshly initialised fully supervised PSP model, starts `python -m ave_tf.serve` in a
subprocess on 127.0.0.1, and times sequential columnar predict requests from one client at batch
1 and 16 (latency p50/p99, videos/s). It then times the JSON work of one request on its own —
client encode, server decode + conversion to arrays, server answer encode, client answer decode
— to give the JSON share of the median latency, and the in-process SavedModel throughput
(`tf.saved_model.load`, same batches). Results replace the "## Serving (REST)" section of
BENCHMARKS.md.
"""

import json
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ave_tf import ave  # noqa: E402
from ave_tf.serving import rest_api  # noqa: E402
from ave_tf.serving.client import ServingClient  # noqa: E402
from benchmarks.benchmarks_md import write_section  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("requests_batch1", 40, "Timed requests at batch 1.")
flags.DEFINE_integer("requests_batch16", 6, "Timed requests at batch 16.")
flags.DEFINE_integer("warmup", 2, "Untimed requests per batch size first.")

SECTION = "Serving (REST)"


def _videos(batch, seed=0):
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(batch, ave.NUM_SEGMENTS, ave.AUDIO_DIM)).astype(np.float32)
    visual = rng.random((batch, ave.NUM_SEGMENTS, *ave.VISUAL_SHAPE), dtype=np.float32)
    return audio, visual


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def _json_costs(loaded, audio, visual, repeats=3):
    """Median seconds of each JSON step of one columnar request, measured in isolation."""
    specs = loaded.inputs["serving_default"]
    steps = {"client_encode": [], "server_decode": [], "server_encode": [], "client_decode": []}
    for _ in range(repeats):
        start = time.perf_counter()
        document = rest_api.predict_request_document({"audio": audio, "visual": visual})
        body = json.dumps(document, separators=(",", ":")).encode()
        steps["client_encode"].append(time.perf_counter() - start)
        start = time.perf_counter()
        arrays, request_format = rest_api.request_inputs(rest_api.parse_json(body), specs)
        steps["server_decode"].append(time.perf_counter() - start)
        outputs = loaded.predict("serving_default", arrays)
        start = time.perf_counter()
        answer = json.dumps(rest_api.response_document(outputs, request_format)).encode()
        steps["server_encode"].append(time.perf_counter() - start)
        start = time.perf_counter()
        rest_api.response_outputs(json.loads(answer))
        steps["client_decode"].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in steps.items()}, len(body)


def _in_process(loaded, audio, visual, repeats):
    loaded.predict("serving_default", {"audio": audio, "visual": visual})  # trace/warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loaded.predict("serving_default", {"audio": audio, "visual": visual})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from ave_tf.export import export_saved_model
    from ave_tf.models import fully_supervised_model
    from ave_tf.serving.repository import load_version

    keras.utils.set_random_seed(0)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="serving_benchmark_"))
    version_dir = export_saved_model(fully_supervised_model(), workdir, "psp_fully")
    loaded = load_version(version_dir, 1)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ave_tf.serve", "--model_base_path", str(version_dir.parent),
         "--port", str(port), "--file_system_poll_wait_seconds", "0"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    rows = []
    try:
        server.stdout.readline()
        client = ServingClient(f"http://127.0.0.1:{port}", "psp_fully", timeout=300)
        client.wait_until_available(timeout=120)
        for batch, count in ((1, FLAGS.requests_batch1), (16, FLAGS.requests_batch16)):
            audio, visual = _videos(batch, seed=batch)
            for _ in range(FLAGS.warmup):
                client.predict_outputs(audio, visual)
            latencies = []
            for _ in range(count):
                start = time.perf_counter()
                client.predict_outputs(audio, visual)
                latencies.append(time.perf_counter() - start)
            json_steps, body_bytes = _json_costs(loaded, audio, visual)
            in_process = _in_process(loaded, audio, visual, repeats=max(count, 5))
            p50 = _percentile(latencies, 50)
            row = {
                "batch": batch,
                "requests": count,
                "p50_ms": 1000 * p50,
                "p99_ms": 1000 * _percentile(latencies, 99),
                "rest_videos_per_s": batch * count / sum(latencies),
                "in_process_videos_per_s": batch / in_process,
                "json_share": sum(json_steps.values()) / p50,
                "body_mb": body_bytes / 1e6,
                **{f"{k}_ms": 1000 * v for k, v in json_steps.items()},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    command = "python benchmarks/serving_benchmark.py"
    if FLAGS.requests_batch1 != 40 or FLAGS.requests_batch16 != 6:
        command += f" --requests_batch1 {FLAGS.requests_batch1} --requests_batch16 "
        command += f"{FLAGS.requests_batch16}"
    lines = [
        f"Command: `{command}` — one client, sequential columnar requests (no gzip) to "
        "`python -m ave_tf.serve` on 127.0.0.1; freshly initialised fully supervised PSP; "
        f"machine: {os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), "
        "shared with other jobs, no GPU. Latencies are per request, client side (encode, "
        "HTTP, server decode + model + encode, client decode). JSON share = the median JSON "
        "work of one request (client encode + server decode to arrays + server answer encode "
        "+ client answer decode, each timed alone) / the median latency.",
        "",
        "| batch | requests | body MB | p50 ms | p99 ms | REST videos/s | in-process "
        "SavedModel videos/s | JSON share | client encode ms | server decode ms | "
        "server encode ms | client decode ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['requests']} | {r['body_mb']:.1f} | {r['p50_ms']:.0f} | "
            f"{r['p99_ms']:.0f} | {r['rest_videos_per_s']:.1f} | "
            f"{r['in_process_videos_per_s']:.1f} | {100 * r['json_share']:.0f}% | "
            f"{r['client_encode_ms']:.0f} | {r['server_decode_ms']:.0f} | "
            f"{r['server_encode_ms']:.1f} | {r['client_decode_ms']:.1f} |"
        )
    lines += [
        "",
        "Visual features dominate: one video is 250,880 floats, about 5 MB of JSON (float32 "
        "values written with full float64 precision so they round-trip exactly). For "
        "throughput-bound clients, TF Serving's gRPC API with binary tensors avoids this cost.",
        "",
    ]
    write_section(SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
