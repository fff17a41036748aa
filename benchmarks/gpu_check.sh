#!/usr/bin/env bash
# GPU check: what a GPU machine does with ave-tf, in one command (under ~8 minutes on one GPU).
#
#   benchmarks/gpu_check.sh            # from the repository root (or anywhere: it cd's there)
#
# Prints the devices seen (nvidia-smi and TensorFlow); trains `python -m trainers.fully` on
# tfds_ave/synthetic_full under MirroredStrategy over all GPUs for $EPOCHS epochs (default 5)
# with and without --jit_compile and --mixed_precision (mixed float16 on a GPU), and prints each
# run's training videos/s and wall seconds from its results.json; then the model benchmark's
# rows on the GPU. The figures also go into BENCHMARKS.md, sections "GPU check" and
# "Model on GPU".
#
# Where there is no GPU it prints "no GPU: ..." and exits 0 at once (CI runs it that way).
#
# Environment: PYTHON (default .venv/bin/python; a missing .venv is created from
# requirements.txt), DATA_DIR (where synthetic_full is built, ~4.1 GB, ~70 s; default: a fresh
# temporary folder, deleted at the end), EPOCHS (default 5), BUDGET (seconds for the build,
# the runs and the benchmark together, default 450: each step is cut at its own cap -- build
# 150, training run 90, model benchmark 150 -- or at the budget's end, and skipped when less
# than 20 s are left; a cut or failed step makes the exit code 1).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "no GPU: nvidia-smi not found; nothing to check"
  exit 0
fi
if ! gpus=$(nvidia-smi -L 2>/dev/null) || ! grep -q '^GPU' <<<"$gpus"; then
  echo "no GPU: nvidia-smi lists none; nothing to check"
  exit 0
fi

PYTHON=${PYTHON:-.venv/bin/python}
EPOCHS=${EPOCHS:-5}
BUDGET=${BUDGET:-450}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
work=$(mktemp -d -t gpu_check.XXXXXX)
trap 'rm -rf "$work"' EXIT
DATA_DIR=${DATA_DIR:-$work/tfds}

if [[ ! -x $PYTHON ]]; then
  if [[ $PYTHON != .venv/bin/python ]]; then
    echo "error: PYTHON=$PYTHON is not an executable" >&2
    exit 2
  fi
  echo "== creating .venv from requirements.txt"
  if ! { python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt; }; then
    echo "error: could not install requirements.txt into .venv (no package index reachable?);" \
      "set PYTHON to an interpreter that has them" >&2
    exit 1
  fi
fi

start=$SECONDS
status=0

# Seconds step "$1" may take: its cap, clipped to what is left of the budget.
allowed() {
  local left=$((BUDGET - (SECONDS - start)))
  echo $((left < $1 ? left : $1))
}

# run_step NAME CAP COMMAND...: runs COMMAND under its time limit; a failure is reported, kept
# in the exit code, and does not stop the later steps.
run_step() {
  local name=$1 limit
  limit=$(allowed "$2")
  shift 2
  if ((limit < 20)); then
    echo "   $name skipped: the ${BUDGET}s budget is spent"
    status=1
    return 0
  fi
  if ! timeout "$limit" "$@"; then
    echo "   $name FAILED or timed out after ${limit}s"
    status=1
  fi
}

echo "== devices"
echo "$gpus"
"$PYTHON" - <<'EOF'
import tensorflow as tf

build = tf.sysconfig.get_build_info()
print(f"TensorFlow {tf.__version__} (CUDA {build.get('cuda_version')}, "
      f"cuDNN {build.get('cudnn_version')})")
for device in tf.config.list_physical_devices():
    print(f"TensorFlow sees {device.name} ({device.device_type})")
if not tf.config.list_physical_devices("GPU"):
    raise SystemExit(
        "error: nvidia-smi lists GPUs but TensorFlow sees none (CUDA_VISIBLE_DEVICES, or a "
        "TensorFlow without CUDA: pip install 'tensorflow[and-cuda]' of the pinned version)"
    )
EOF

echo "== building tfds_ave/synthetic_full in $DATA_DIR (if not built)"
run_step build 150 "$PYTHON" -c "import sys; from ave_tf import data
data.prepare_builder('synthetic_full', data_dir=sys.argv[1])" "$DATA_DIR"

echo "== trainers.fully on synthetic_full, MirroredStrategy over all GPUs, $EPOCHS epochs"
variants=("" "--jit_compile" "--mixed_precision" "--jit_compile --mixed_precision")
for index in "${!variants[@]}"; do
  extra=${variants[$index]}
  echo "-- python -m trainers.fully --dataset=synthetic_full --strategy=mirrored" \
    "--epochs=$EPOCHS --export_dir= $extra"
  # shellcheck disable=SC2086  # $extra holds zero or more flags
  run_step "run" 90 "$PYTHON" -m trainers.fully --dataset=synthetic_full \
    --data_dir="$DATA_DIR" --strategy=mirrored --epochs="$EPOCHS" --export_dir= \
    --model_dir="$work/run_$index" --seed=1 $extra >"$work/run_$index.log" 2>&1
  grep -v '^\s*$' "$work/run_$index.log" | tail -n 3 | sed 's/^/   /'
done
"$PYTHON" - "$work" "$EPOCHS" "$gpus" "${variants[@]}" <<'EOF'
import json
import pathlib
import sys

from benchmarks.benchmarks_md import machine, write_section

work, epochs, gpus, variants = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
rows = []
for index, flags in enumerate(variants):
    path = work / f"run_{index}" / "results.json"
    if not path.exists():
        rows.append(f"| {flags or '(none)'} | failed | | |")
        continue
    results = json.loads(path.read_text())
    run = results["runs"][0]
    speed = run.get("videos_per_second")  # None when there was only one epoch
    rows.append(
        f"| {flags or '(none)'} | {'n/a' if speed is None else f'{speed:.0f}'} "
        f"| {results['wall_seconds']:.1f} | {100 * run['test_accuracy']:.1f} |"
    )
body = "\n".join(
    [
        f"Command: `benchmarks/gpu_check.sh` (EPOCHS={epochs}). Machine: {machine()}; "
        f"{'; '.join(gpus.splitlines())}.",
        f"`python -m trainers.fully --dataset=synthetic_full --strategy=mirrored "
        f"--epochs={epochs} --export_dir=` plus the flags of the row; training videos/s "
        "(median over epochs after the first) and wall s (the trainer's own wall time) as "
        "its results.json records them.",
        "",
        "| flags | training videos/s | wall s | test acc. % |",
        "|---|---|---|---|",
        *rows,
    ]
)
print(body)
write_section("GPU check (benchmarks/gpu_check.sh)", body)
EOF

echo "== model benchmark on the GPU"
run_step "model benchmark" 150 "$PYTHON" -m benchmarks.model_benchmark --repeats 5 \
  --latency_runs 50 --section="Model on GPU (benchmarks/gpu_check.sh)"
echo "== done in $((SECONDS - start)) s"
exit "$status"
