"""Serving latency: in-process SavedModel (XLA or not), a PyTorch port of the official network,
REST JSON, REST b64 and gRPC, at batch 1 and 16, against one exported PSP model.

    flock /tmp/ave-timed.lock python benchmarks/serving_benchmark.py   # writes BENCHMARKS.md

One run, one machine. The fully supervised PSP network gets a random official `state_dict`
(`tests/official_weights.py`), loaded into the Keras model (`ave_tf.convert`) and exported
twice (`ave_tf.export.export_saved_model`, `jit_compile=True` and `False`), and into
`benchmarks/torch_port.py`, this project's PyTorch port of the official network written from
the reference (not the authors' code; run by `--torch_python`; its probabilities are compared
with the SavedModel's). `python -m tfserving_standin.serve` serves the XLA
export on 127.0.0.1 (and answers gRPC on a second port when `ave_tf.serving.grpc_client`
exists); one client sends sequential requests: REST JSON (`ServingClient`, columnar, whatever
JSON library the client and server use), REST b64 (`ServingClient(binary=True)`: the
`predict_bytes` signature) and gRPC (`GrpcClient`). Latencies are client side, per request.
The 0.7x target is read from `--paired_rounds` alternating rounds, which also time the
network alone (an XLA `tf.function` on the Keras model, no signature around it): the floor
under the in-process figure.
The JSON work of one request is also timed alone with the standard library's `json` and with
`orjson`, so the cost of JSON before and after the switch shows in one run. Rows that cannot
run here (no torch venv, no gRPC yet) say "not measured".
"""

import importlib.util
import json
import multiprocessing
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags, logging

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.benchmarks_md import machine, write_section  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("requests_batch1", 40, "Timed REST/gRPC requests at batch 1.")
flags.DEFINE_integer("requests_batch16", 6, "Timed REST/gRPC requests at batch 16.")
flags.DEFINE_integer("calls_batch1", 200, "Timed in-process / PyTorch calls at batch 1.")
flags.DEFINE_integer("calls_batch16", 20, "Timed in-process / PyTorch calls at batch 16.")
flags.DEFINE_integer("warmup", 2, "Untimed requests per path and batch size first.")
flags.DEFINE_integer(
    "paired_rounds",
    4,
    "Extra rounds at batch 1, each the in-process XLA export, the network alone (XLA "
    "tf.function) then the PyTorch port of the official network (--calls_batch1 calls each); "
    "the 0.7x target is read from the median of their ratios, since this machine's speed "
    "drifts between rows measured minutes apart.",
)
flags.DEFINE_string(
    "torch_python", "/work/torchvenv/bin/python", "Python of a venv with torch ('' skips)."
)
flags.DEFINE_string("section", "Serving", "BENCHMARKS.md section to write ('' writes none).")

BATCHES = (1, 16)
TORCH_PORT = "PyTorch port of the official network"
"""The rows of `benchmarks/torch_port.py`: this project's port, written from the reference."""
MODEL = "psp_fully"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _timings(call, count: int, warmup: int) -> tuple[list[float], float]:
    """Seconds of `count` calls after `warmup` ones, and the first call's seconds."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        call()
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds, first


def _row(path: str, batch: int, seconds: list[float], body_bytes=None, note="") -> dict:
    return {
        "path": path,
        "batch": batch,
        "calls": len(seconds),
        "p50_ms": 1e3 * float(np.percentile(seconds, 50)),
        "p99_ms": 1e3 * float(np.percentile(seconds, 99)),
        "videos_per_s": batch * len(seconds) / sum(seconds),
        "body_mb": None if body_bytes is None else body_bytes / 1e6,
        "note": note,
    }


def _measure_in_process(version_dir: str, label: str, inputs: dict, counts: dict, warmup: int):
    """Rows (and batch -> probabilities) of `LoadedVersion.predict` on one export, in the
    calling process."""
    from tfserving_standin.repository import load_version

    loaded = load_version(version_dir, 1)
    rows, probabilities = [], {}
    for batch in counts:
        arrays = {name: value[:batch] for name, value in inputs.items()}
        seconds, first = _timings(
            lambda a=arrays: loaded.predict("serving_default", a), counts[batch], warmup
        )
        rows.append(_row(label, batch, seconds, note=f"first call {first:.1f} s"))
        probabilities[batch] = loaded.predict("serving_default", arrays)["segment_probabilities"]
    return rows, probabilities


def _in_fresh_process(function, *arguments):
    """`function(*arguments)` in a new Python process, as a server (and the PyTorch port's row)
    runs its model: in the process that had just exported, every call ran 1.3-1.9x slower
    (measured at batch 1; not the garbage collector, not extra threads)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, arguments)


def _in_process(version_dir, label: str, inputs: dict, batches=BATCHES) -> tuple[list, dict]:
    """`_measure_in_process` in a fresh process."""
    counts = {b: FLAGS.calls_batch1 if b == 1 else FLAGS.calls_batch16 for b in batches}
    return _in_fresh_process(
        _measure_in_process, str(version_dir), label, inputs, counts, FLAGS.warmup
    )


def _torch_port(
    workdir: pathlib.Path, state_path, inputs: dict, reference: dict, batches=BATCHES
) -> list[dict]:
    """Rows of the PyTorch port of the official network (`torch_port.py`), or a "not
    measured" row."""
    python = FLAGS.torch_python
    if not python or not os.path.exists(python):
        return [{"path": TORCH_PORT, "missing": f"no torch Python at {python!r}"}]
    rows = []
    for batch in batches:
        batch_inputs = workdir / f"torch_inputs_{batch}.npz"
        np.savez(batch_inputs, **{f"{k}_{batch}": v[:batch] for k, v in inputs.items()})
        out = workdir / f"torch_out_{batch}.npz"
        count = FLAGS.calls_batch1 if batch == 1 else FLAGS.calls_batch16
        script = pathlib.Path(__file__).with_name("torch_port.py")
        subprocess.run(
            [python, str(script), str(state_path), str(batch_inputs), str(out), str(count)],
            check=True,
            timeout=1800,
        )
        with np.load(out) as results:
            difference = np.abs(results[f"probabilities_{batch}"] - reference[batch]).max()
            note = f"max abs difference to the SavedModel's probabilities {difference:.1e}"
            rows.append(_row(TORCH_PORT, batch, list(results[f"seconds_{batch}"]), None, note))
    return rows


def _measure_network(model_path: str, inputs: dict, count: int, warmup: int) -> float:
    """Batch-1 p50 ms of the Keras network alone in an XLA-compiled `tf.function` (inputs
    already tensors, the same every call, probabilities to NumPy), in the calling process:
    the floor under the SavedModel's in-process latency."""
    import tensorflow as tf

    from ave_tf.predictors import load_keras_model

    model = load_keras_model(model_path)
    network = tf.function(
        lambda audio, visual: model({"audio": audio, "visual": visual}, training=False)[
            "segment_probabilities"
        ],
        jit_compile=True,
    )
    audio, visual = (tf.constant(inputs[name][:1]) for name in ("audio", "visual"))
    seconds, _ = _timings(lambda: network(audio, visual).numpy(), count, warmup)
    return 1e3 * float(np.percentile(seconds, 50))


def _paired_ratios(served, model_path, workdir, state_path, inputs, reference) -> dict:
    """Batch-1 p50 ratios to the PyTorch port of the official network of `--paired_rounds`
    rounds, each the in-process XLA export, the network alone (`_measure_network`), then the
    port, each in a fresh process: {"in-process": [...], "network alone": [...]} (empty
    without torch)."""
    ratios = {"in-process": [], "network alone": []}
    for _ in range(FLAGS.paired_rounds):
        (ours,), _ = _in_process(served, "paired", inputs, batches=(1,))
        network = _in_fresh_process(
            _measure_network, str(model_path), inputs, FLAGS.calls_batch1, FLAGS.warmup
        )
        (theirs,) = _torch_port(workdir, state_path, inputs, reference, batches=(1,))
        if "missing" in theirs:
            return {}
        ratios["in-process"].append(ours["p50_ms"] / theirs["p50_ms"])
        ratios["network alone"].append(network / theirs["p50_ms"])
        print(
            f"paired round: in-process {ours['p50_ms']:.2f}, network alone {network:.2f}, "
            f"PyTorch {theirs['p50_ms']:.2f} ms",
            flush=True,
        )
    return ratios


def _json_library() -> str:
    """The JSON library the client and the stand-in use (both go through `rest_format`)."""
    from ave_tf.serving import rest_format

    return "orjson" if "orjson" in vars(rest_format) else "json"


def _remote(url: str, grpc_target: str | None, inputs: dict, expected: dict) -> list[dict]:
    from ave_tf.serving.client import ServingClient

    clients = {
        f"REST JSON ({_json_library()})": ServingClient(url, MODEL, timeout=600),
        "REST b64 (predict_bytes)": ServingClient(url, MODEL, binary=True, timeout=600),
    }
    rows = []
    for path, client in clients.items():
        for batch in BATCHES:
            audio, visual = inputs["audio"][:batch], inputs["visual"][:batch]
            count = FLAGS.requests_batch1 if batch == 1 else FLAGS.requests_batch16
            classes = client.predict_outputs(audio, visual)["segment_classes"]
            np.testing.assert_array_equal(classes, expected[batch].argmax(-1), path)
            seconds, _ = _timings(lambda c=client, a=audio, v=visual: c.predict_outputs(a, v),
                                  count, FLAGS.warmup)  # fmt: skip
            body, _ = client.encode_request(audio, visual)
            rows.append(_row(path, batch, seconds, len(body)))
            print(json.dumps(rows[-1]), flush=True)
    if grpc_target is None:
        rows.append({"path": "gRPC", "missing": "ave_tf.serving.grpc_client not in this tree"})
        return rows
    from ave_tf.serving.grpc_client import GrpcClient

    with GrpcClient(grpc_target, MODEL, timeout=600) as client:
        for batch in BATCHES:
            arrays = {name: value[:batch] for name, value in inputs.items()}
            count = FLAGS.requests_batch1 if batch == 1 else FLAGS.requests_batch16
            classes = client.predict_outputs(arrays)["segment_classes"]
            np.testing.assert_array_equal(classes, expected[batch].argmax(-1), "gRPC")
            seconds, _ = _timings(lambda a=arrays: client.predict_outputs(a), count, FLAGS.warmup)
            body = sum(value.nbytes for value in arrays.values())
            rows.append(_row("gRPC", batch, seconds, body, "body: the raw tensor bytes"))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _json_step_medians(dumps, loads, document, outputs, specs) -> dict[str, float]:
    """Median ms of the four JSON steps of one request with `dumps` / `loads`."""
    from ave_tf.serving import rest_format
    from tfserving_standin import rest_api

    body = dumps(document)
    answer = dumps(rest_api.response_document(outputs, rest_format.COLUMNAR))
    steps = {
        "client encode": lambda: dumps(document),
        "server decode": lambda: rest_api.request_inputs(loads(body), specs),
        "server encode": lambda: dumps(rest_api.response_document(outputs, rest_format.COLUMNAR)),
        "client decode": lambda: rest_format.response_outputs(loads(answer)),
    }
    return {name: 1e3 * statistics.median(_timings(step, 3, 1)[0]) for name, step in steps.items()}


def _json_work(version_dir, inputs: dict) -> list[dict]:
    """Median ms of each JSON step of one columnar request with `json` and with `orjson`."""
    import orjson

    from tfserving_standin.repository import load_version

    loaded = load_version(version_dir, 1)
    specs = loaded.inputs["serving_default"]
    libraries = {
        # The standard library writes arrays through tolist() (what the client did before).
        "json": (
            lambda doc: json.dumps(doc, separators=(",", ":"), default=np.ndarray.tolist).encode(),
            json.loads,
        ),
        "orjson": (lambda doc: orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), orjson.loads),
    }
    rows = []
    for batch in BATCHES:
        arrays = {name: value[:batch] for name, value in inputs.items()}
        outputs = loaded.predict("serving_default", arrays)
        for library, (dumps, loads) in libraries.items():
            document = {"signature_name": "serving_default", "inputs": arrays}
            medians = _json_step_medians(dumps, loads, document, outputs, specs)
            rows.append({"library": library, "batch": batch, **medians})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _start_server(version_dir: pathlib.Path):
    port = _free_port()
    command = [
        sys.executable, "-m", "tfserving_standin.serve",
        "--model_base_path", str(version_dir.parent),
        "--port", str(port), "--file_system_poll_wait_seconds", "0",
    ]  # fmt: skip
    grpc_target = None
    if importlib.util.find_spec("ave_tf.serving.grpc_client") is not None:
        grpc_port = _free_port()
        command += ["--grpc_port", str(grpc_port)]
        grpc_target = f"127.0.0.1:{grpc_port}"
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    server.stdout.readline()
    return server, f"http://127.0.0.1:{port}", grpc_target


def _fmt(value, digits=1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ratios_text(ratios: list[float]) -> str:
    return f"{', '.join(f'{r:.2f}' for r in ratios)}, median **{statistics.median(ratios):.2f}x**"


def _report(rows, json_rows, paired, load_before, load_after) -> str:
    by_key = {(r["path"], r.get("batch")): r for r in rows}
    base = by_key[("in-process SavedModel, XLA export (served)", 1)]["p50_ms"]
    changed = "".join(
        f" --{name}={FLAGS[name].value}"
        for name in (
            "requests_batch1",
            "requests_batch16",
            "calls_batch1",
            "calls_batch16",
            "paired_rounds",
        )
        if FLAGS[name].value != FLAGS[name].default
    )
    lines = [
        f"Command: `python benchmarks/serving_benchmark.py{changed}`  ",
        f"Machine: {machine()}; load average {load_before:.1f} before, {load_after:.1f} after "
        "(the machine was shared with other jobs unless these say otherwise).",
        "",
        "Fully supervised PSP with a random official `state_dict`, the same weights in every "
        "row; one client, sequential requests to `python -m tfserving_standin.serve` on "
        "127.0.0.1, which serves the XLA export. In-process: `LoadedVersion.predict` (the call "
        "the server makes; NumPy in, NumPy out), in a fresh process. PyTorch port: this project's "
        "PyTorch port of the official network, written from the reference (not the authors' "
        "code, and not run against it: its difference to the SavedModel compares two "
        "implementations of the same reference), in eval mode, `torch.no_grad`, default "
        "threads, in its own process (`benchmarks/torch_port.py`). Body = request "
        "body size; ratio = p50 / the in-process XLA export's batch-1 p50.",
        "",
        "| path | batch | calls | body MB | p50 ms | p99 ms | videos/s | ratio | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "missing" in r:
            lines.append(f"| {r['path']} | 1, 16 | | | not measured | | | | {r['missing']} |")
            continue
        lines.append(
            f"| {r['path']} | {r['batch']} | {r['calls']} | {_fmt(r['body_mb'])} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['videos_per_s']:.1f} | "
            f"{r['p50_ms'] / base:.2f} | {r['note']} |"
        )
    lines += [
        "",
        "JSON work of one columnar request, each step timed alone (median ms; server decode "
        "includes the checks and conversion to arrays of `rest_api.request_inputs`):",
        "",
        "| library | batch | client encode | server decode | server encode | client decode |",
        "|---|---|---|---|---|---|",
    ]
    for r in json_rows:
        lines.append(
            f"| {r['library']} | {r['batch']} | {r['client encode']:.1f} | "
            f"{r['server decode']:.1f} | {r['server encode']:.2f} | {r['client decode']:.2f} |"
        )
    lines += ["", "Targets (issue 12), from this run:", ""]
    torch_row = by_key.get((TORCH_PORT, 1))
    if torch_row:
        lines.append(
            f"- in-process batch 1 <= 0.7x the PyTorch port of the official network: {base:.2f} ms "
            f"vs "
            f"{torch_row['p50_ms']:.2f} ms = {base / torch_row['p50_ms']:.2f}x in the rows above"
            + (
                f"; in {FLAGS.paired_rounds} alternating rounds ({FLAGS.calls_batch1} calls "
                f"each, a fresh process each): {_ratios_text(paired['in-process'])}; the "
                "network alone (an XLA `tf.function` on the Keras model, inputs already "
                "tensors: no signature, no conversions) in the same rounds: "
                f"{_ratios_text(paired['network alone'])}"
                if paired
                else ""
            )
        )
    for path in ("REST b64 (predict_bytes)", "gRPC"):
        row = by_key.get((path, 1))
        if row:
            lines.append(
                f"- {path} batch-1 p50 <= 2x in-process: {row['p50_ms']:.2f} ms = "
                f"**{row['p50_ms'] / base:.2f}x**"
            )
        else:
            lines.append(f"- {path} batch-1 p50 <= 2x in-process: not measured")
    for (path, batch), row in by_key.items():
        if path.startswith("REST JSON") and batch == 1:
            lines.append(f"- {path} batch-1 p50 <= 80 ms: **{row['p50_ms']:.0f} ms**")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's export logs its every step at INFO
    from ave_tf.config import FullySupervisedConfig
    from ave_tf.convert import official_model
    from ave_tf.export import export_saved_model
    from tests import official_weights

    load_before = os.getloadavg()[0]
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="serving_benchmark_"))
    state = official_weights.random_state_dict("fully", seed=0)
    state_path = workdir / "state.npz"
    official_weights.save_state_dict(state, state_path)
    model = official_model(state, FullySupervisedConfig())
    served = export_saved_model(model, workdir / "exports", MODEL, jit_compile=True)
    plain = export_saved_model(model, workdir / "exports", MODEL + "_plain", jit_compile=False)
    inputs = official_weights.random_features(max(BATCHES), seed=1)

    rows, reference = _in_process(served, "in-process SavedModel, XLA export (served)", inputs)
    plain_rows, _ = _in_process(plain, "in-process SavedModel, plain export", inputs)
    rows += plain_rows
    for row in rows:
        print(json.dumps(row), flush=True)
    rows += _torch_port(workdir, state_path, inputs, reference)
    print(json.dumps(rows[-1]), flush=True)
    model_path = workdir / "model.keras"
    model.save(model_path)
    paired = _paired_ratios(served, model_path, workdir, state_path, inputs, reference)
    server, url, grpc_target = _start_server(served)
    try:
        from ave_tf.serving.client import ServingClient

        ServingClient(url, MODEL).wait_until_available(timeout=300)
        rows += _remote(url, grpc_target, inputs, reference)
    finally:
        server.terminate()
        server.wait(timeout=30)
    json_rows = _json_work(served, inputs)
    report = _report(rows, json_rows, paired, load_before, os.getloadavg()[0])
    print(report)
    if FLAGS.section:
        write_section(FLAGS.section, report)


if __name__ == "__main__":
    app.run(main)
