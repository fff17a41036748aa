"""Which oneDNN kernels run during feature extraction, in which data types and math mode.

Run::

    python -m benchmarks.onednn_kernels [--fps 2] [--width 480 --height 360]

Extracts the features of one generated 10 s clip (H.264 + AAC, ``--fps`` frames per second:
at 2 fps VGG19 sees 20 distinct frames instead of a 25 fps video's 160, the same kernels) with
random-weight VGGish and VGG19, the steps of `FeatureExtractor.extract`, in a child process
run with ``ONEDNN_VERBOSE=1``, once in this environment and once more with
``ONEDNN_DEFAULT_FPMATH_MODE=BF16`` (f32 math may be down-converted to bf16: what the kernels
and their time become then). oneDNN prints one line per executed primitive: its kind,
the implementation it picked (the name says the ISA: ``avx512_core``, ``avx512_core_bf16``,
``avx512_core_amx``, ...), the memory data types and attributes (``attr-fpmath:bf16`` when f32
math may be down-converted to bf16) and the milliseconds. The lines are counted per network,
kind, implementation, data types and math mode and written to BENCHMARKS.md ("oneDNN kernels
in extraction") with the CPU's model and relevant ISA flags and its float32 peak from cores x
clock x FLOP per cycle (the assumptions are written beside it). The first child inherits the
environment, so a ``TF_SET_ONEDNN_FPMATH_MODE`` or ``ONEDNN_DEFAULT_FPMATH_MODE`` set there
shows its effect.
"""

import collections
import ctypes
import dataclasses
import os
import pathlib
import subprocess
import sys

from absl import app, flags

flags.DEFINE_integer("fps", 2, "Frame rate of the generated clip.", lower_bound=1)
flags.DEFINE_integer("width", 480, "Frame width of the generated clip.")
flags.DEFINE_integer("height", 360, "Frame height of the generated clip.")
flags.DEFINE_string("child", None, "(internal) extract the features of this clip and exit.")
FLAGS = flags.FLAGS

FPMATH_VARIABLES = ("TF_SET_ONEDNN_FPMATH_MODE", "ONEDNN_DEFAULT_FPMATH_MODE")
"""The environment variables that let oneDNN down-convert f32 math (TensorFlow's, read once
by its oneDNN ops: ``BF16`` sets oneDNN's default math mode to bf16; oneDNN's own)."""
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")
_MARK = "ave_tf_network:"
_REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
_COMPUTE = ("convolution", "inner_product", "matmul")


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One group of executed primitives (see `count_kernels`)."""

    network: str
    kind: str
    implementation: str
    data_types: str
    fpmath: str


def _data_types(memory_descriptors: str) -> str:
    """``src:f32::blocked:acdb::f0 wei:f32:a:... dst:f32::...`` -> ``src f32, wei f32, dst
    f32`` (bias and workspace left out)."""
    kept = []
    for descriptor in memory_descriptors.split():
        role, _, rest = descriptor.partition(":")
        if role in ("src", "wei", "dst"):
            kept.append(f"{role} {rest.split(':', 1)[0]}")
    return ", ".join(kept)


def count_kernels(log: str) -> tuple[dict[Kernel, list[float]], list[str]]:
    """Parses ``ONEDNN_VERBOSE=1`` output (oneDNN 3.x, ``v1`` lines).

    Args:
        log: the child's stdout: oneDNN lines, and ``ave_tf_network: NAME`` lines that say
            which network the following primitives belong to.

    Returns:
        `Kernel` -> the milliseconds of each execution, and oneDNN's ``info`` lines (version,
        ISA) without their prefix.
    """
    kernels: dict[Kernel, list[float]] = collections.defaultdict(list)
    info, network = [], "other"
    for line in log.splitlines():
        if line.startswith(_MARK):
            network = line[len(_MARK) :].strip()
            continue
        fields = line.split(",")
        if fields[:2] != ["onednn_verbose", "v1"] or len(fields) < 4:
            continue
        if fields[2] == "info" and (
            fields[3].startswith("oneDNN") or fields[4:5] and fields[4].startswith("isa:")
        ):
            info.append(",".join(fields[3:]))
        if fields[2:4] != ["primitive", "exec"] or len(fields) < 13:
            continue
        kind, implementation, memory, attributes = fields[5], fields[6], fields[8], fields[9]
        fpmath = "strict"
        for attribute in attributes.split():
            if attribute.startswith("attr-fpmath:"):
                fpmath = attribute.split(":", 1)[1]
        key = Kernel(network, kind, implementation, _data_types(memory), fpmath)
        kernels[key].append(float(fields[-1]))
    return dict(kernels), info


def reduced_precision(kernels: dict[Kernel, list[float]]) -> list[Kernel]:
    """The compute kernels (convolution, inner product, matmul) that may not be float32-exact:
    a data type other than f32, or a math mode other than strict."""
    return [
        kernel
        for kernel in kernels
        if kernel.kind in _COMPUTE
        and (
            kernel.fpmath != "strict"
            or any(role_type.split()[1] != "f32" for role_type in kernel.data_types.split(", "))
        )
    ]


def cpu_facts() -> dict:
    """Model name, vendor, family, the `ISA_FLAGS` present, logical CPUs, threads per core and
    the clock /proc/cpuinfo reports (MHz)."""
    fields: dict[str, str] = {}
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    present = set(fields.get("flags", "").split())
    siblings, cores = int(fields.get("siblings", 1)), int(fields.get("cpu cores", 1))
    return {
        "model": fields.get("model name", "unknown"),
        "vendor": fields.get("vendor_id", ""),
        "family": int(fields.get("cpu family", 0)),
        "flags": {flag: flag in present for flag in ISA_FLAGS},
        "cpus": os.cpu_count(),
        "threads_per_core": max(1, siblings // max(1, cores)),
        "mhz": float(fields.get("cpu MHz", 0.0)),
    }


def float32_peak(cpu: dict) -> tuple[float, str]:
    """float32 peak GFLOP/s = logical CPUs / threads per core x FLOP per cycle x clock, and
    the assumptions it rests on."""
    flags_present = cpu["flags"]
    if flags_present["avx512f"] and cpu["vendor"] == "AuthenticAMD" and cpu["family"] == 25:
        per_cycle, why = 32, "AMD Zen 4: two 256-bit FMA pipes, a 512-bit FMA takes both"
    elif flags_present["avx512f"]:
        per_cycle, why = 64, "two 512-bit FMA units per core (Xeon Gold/Platinum, AMD Zen 5)"
    elif flags_present["fma"]:
        per_cycle, why = 32, "two 256-bit FMA units per core"
    else:
        per_cycle, why = 8, "SSE: one 128-bit multiply and one add per cycle"
    cores = cpu["cpus"] / cpu["threads_per_core"]
    ghz = cpu["mhz"] / 1000
    peak = cores * per_cycle * ghz
    text = (
        f"{cores:g} cores x {per_cycle} FLOP/cycle x {ghz:.2f} GHz = {peak:.0f} GFLOP/s "
        f"({why}; the clock /proc/cpuinfo reports, no turbo; each of the {cpu['cpus']} "
        f"CPUs counted as a core when /proc/cpuinfo shows {cpu['threads_per_core']} thread(s) "
        "per core: if the host's vCPUs are hyper-thread siblings the peak is half)"
    )
    return peak, text


def _mark(network: str) -> None:
    """Prints a network mark in order with oneDNN's lines (both on the C stdout buffer)."""
    libc = ctypes.CDLL(None)
    libc.fflush(None)
    sys.stdout.write(f"{_MARK} {network}\n")
    sys.stdout.flush()


def extract_marked(path: str) -> None:
    """The child: `FeatureExtractor.extract`'s steps on ``path``, each network marked."""
    from ave_tf.extraction import audio, decode, vgg19, vggish

    audio_model, visual_model = vggish.vggish_model(), vgg19.vgg19_pool5_model(None)
    clip = decode.read_clip(path)
    _mark("VGGish")
    audio.audio_features(clip.waveform, clip.sample_rate, audio_model)
    _mark("VGG19")
    vgg19.visual_features(clip.frames, visual_model)
    _mark("other")


def run_child(path: str, environment: dict | None = None) -> str:
    """Runs `extract_marked` in a fresh process with ``ONEDNN_VERBOSE=1``; its stdout."""
    child_env = dict(os.environ if environment is None else environment)
    child_env.update(ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.onednn_kernels", f"--child={path}"],
        capture_output=True,
        text=True,
        env=child_env,
        cwd=_REPOSITORY,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the extraction child failed:\n{result.stderr[-2000:]}")
    return result.stdout


def kernel_table(runs: dict[str, dict[Kernel, list[float]]]) -> list[str]:
    """Markdown rows per run (its environment) and kernel: network, primitive, implementation,
    data types, math mode, count, total ms."""
    rows = [
        "| run | network | primitive | implementation | data types | f32 math | count | total ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run, kernels in runs.items():
        ordered = sorted(kernels.items(), key=lambda item: (item[0].network, -sum(item[1])))
        for kernel, times in ordered:
            rows.append(
                f"| {run} | {kernel.network} | {kernel.kind} | `{kernel.implementation}` | "
                f"{kernel.data_types or '-'} | {kernel.fpmath} | {len(times)} | "
                f"{sum(times):,.1f} |"
            )
    return rows


def compute_ms(kernels: dict[Kernel, list[float]], network: str) -> float:
    """Total milliseconds of ``network``'s convolutions, inner products and matmuls."""
    return sum(
        sum(times)
        for kernel, times in kernels.items()
        if kernel.network == network and kernel.kind in _COMPUTE
    )


def main(argv):
    del argv
    if FLAGS.child:
        extract_marked(FLAGS.child)
        return 0
    import fractions
    import tempfile

    from ave_tf.testing.clips import ClipSpec, write_clip
    from benchmarks.benchmarks_md import machine, write_section

    load_before = os.getloadavg()[0]
    bf16_run = "ONEDNN_DEFAULT_FPMATH_MODE=BF16"
    with tempfile.TemporaryDirectory() as folder:
        spec = ClipSpec(10, fractions.Fraction(FLAGS.fps), 2, FLAGS.width, FLAGS.height)
        path = str(write_clip(os.path.join(folder, "clip.mp4"), spec))
        as_set, info = count_kernels(run_child(path))
        allowed, _ = count_kernels(
            run_child(path, {**os.environ, "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"})
        )
    runs = {"as set": as_set, bf16_run: allowed}
    load_after = os.getloadavg()[0]
    cpu = cpu_facts()
    _, peak_text = float32_peak(cpu)
    isa = ", ".join(
        f"{flag} {'yes' if present else 'no'}" for flag, present in cpu["flags"].items()
    )
    settings = ", ".join(f"`{name}`={os.environ.get(name, 'unset')}" for name in FPMATH_VARIABLES)
    reduced = reduced_precision(as_set)
    verdict = (
        "In the environment as set, every convolution and inner product ran on float32 data "
        "in oneDNN's strict math mode: the extraction is float32 arithmetic here."
        if not reduced
        else f"In the environment as set, {len(reduced)} compute kernel group(s) ran on other "
        "data than f32 or with bf16 math allowed: the features are not the float32 recipe's "
        "exactly here."
    )
    same = {(k.network, k.kind, k.implementation) for k in as_set} == {
        (k.network, k.kind, k.implementation) for k in allowed
    }
    costs = "; ".join(
        f"{network} {compute_ms(as_set, network):,.0f} ms as set, "
        f"{compute_ms(allowed, network):,.0f} ms with bf16 math allowed"
        for network in ("VGGish", "VGG19")
    )
    comparison = (
        f"With `{bf16_run}` oneDNN picked "
        + ("the same implementations" if same else "other implementations (rows above)")
        + f" on this CPU. Convolutions and inner products: {costs} (one run each)."
    )
    table = kernel_table(runs)
    print("\n".join(table))
    print(verdict)
    print(comparison)
    body = "\n".join(
        [
            f"Command: `python -m benchmarks.onednn_kernels --fps {FLAGS.fps} --width "
            f"{FLAGS.width} --height {FLAGS.height}`  ",
            f"Machine: {machine()}; 1-minute load average {load_before:.1f} before, "
            f"{load_after:.1f} after, on {os.cpu_count()} cores (milliseconds from a machine "
            "shared with other jobs are upper bounds).  ",
            f"CPU flags: {isa}. oneDNN: {'; '.join(info) or 'no info lines'}. "
            f"Math-mode environment: {settings}.  ",
            f"float32 peak: {peak_text}.",
            "",
            f"What ran while `FeatureExtractor.extract`'s steps extracted one generated 10 s clip "
            f"({FLAGS.fps} fps: {10 * FLAGS.fps} distinct frames through VGG19, 10 examples "
            "through VGGish; random weights), from `ONEDNN_VERBOSE=1`, in the environment as set "
            f"and with `{bf16_run}` (`f32 math`: the `attr-fpmath` oneDNN reports, strict when "
            "absent; `implementation` names the ISA):",
            "",
            *table,
            "",
            verdict,
            comparison,
            "TensorFlow leaves oneDNN's default math mode (strict: no implicit down-conversion) "
            "unless `TF_SET_ONEDNN_FPMATH_MODE=BF16` is set (it then calls "
            "`dnnl::set_default_fpmath_mode(bf16)`); oneDNN reads `ONEDNN_DEFAULT_FPMATH_MODE` "
            "itself. With bf16 math allowed, oneDNN's documentation lets f32 primitives compute "
            "in bf16 where the CPU has bf16 instructions it uses (AMX: `avx512_core_amx` "
            "implementations). The video-in model (`ave_tf.export_video`) runs the same Keras "
            "layers as TensorFlow graph ops (no XLA), so the same oneDNN primitives.",
        ]
    )
    write_section("oneDNN kernels in extraction (benchmarks/onednn_kernels.py)", body)
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
