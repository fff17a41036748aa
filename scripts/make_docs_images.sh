#!/usr/bin/env bash
# Regenerates the "Look inside" pictures (docs/img/*.png) from the fully supervised PSP model
# trained on the synthetic AVE. Run from the repository root:
#
#   scripts/make_docs_images.sh                 # trains runs/docs_psp_fully first if needed
#   RUN=runs/psp_fully scripts/make_docs_images.sh   # reuse an existing run
#
# Needs the `viz` extra (matplotlib, scikit-learn). Takes a few minutes on 2 CPU cores.
set -euo pipefail

PYTHON=${PYTHON:-python}
RUN=${RUN:-runs/docs_psp_fully}
EPOCHS=${EPOCHS:-40}
OUT=${OUT:-docs/img}
DPI=${DPI:-80}
DATA_DIR=${DATA_DIR:-}
data_dir_flag=()
if [[ -n "$DATA_DIR" ]]; then data_dir_flag=(--data_dir="$DATA_DIR"); fi

if [[ ! -f "$RUN/results.json" ]]; then
  "$PYTHON" -m trainers.fully --dataset=synthetic --epochs="$EPOCHS" --seed=1 \
    --model_dir="$RUN" --export_dir= "${data_dir_flag[@]}"
fi
MODEL=$("$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['runs'][0]['selected_model'])" "$RUN/results.json")

common=(--model="$MODEL" --dataset=synthetic --split=test --out="$OUT" "${data_dir_flag[@]}")
# Test videos 0 and 10 of the synthetic AVE have background around their events.
"$PYTHON" -m ave_tf.visualize timeline "${common[@]}" --videos=0,10 --dpi="$DPI"
"$PYTHON" -m ave_tf.visualize connections "${common[@]}" --videos=10 --dpi=$((DPI * 3 / 4))
"$PYTHON" -m ave_tf.visualize attention "${common[@]}" --videos=10 --dpi="$DPI"
"$PYTHON" -m ave_tf.visualize tsne "${common[@]}" --perplexity=30 --dpi=$((DPI * 3 / 4))
if [[ ! -f "$RUN/evaluate_test.json" ]]; then
  "$PYTHON" -m trainers.evaluate --model="$MODEL" --dataset=synthetic --split=test \
    --output_json="$RUN/evaluate_test.json" "${data_dir_flag[@]}"
fi
"$PYTHON" -m ave_tf.visualize curves --results="$RUN/results.json" \
  --confusion="$RUN/evaluate_test.json" --out="$OUT" --dpi="$DPI"
ls -l "$OUT"
