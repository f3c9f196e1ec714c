#!/usr/bin/env bash
# The prepared GPU script (issue 22): on a CUDA machine, in about 10 minutes, run the CUDA smoke test, then the
# fast recipe (workflow/presets/fast.yaml) and the long one (workflow/presets/long.yaml) through the DAG on the
# GPU, and pack their checkpoints, histories, metrics, benchmark files and the time-to-accuracy CSV and figure
# into one archive.
#
#   benchmarks/gpu_study.sh [--data fer2013.zip] [--out DIR] [--minutes 9] [--tiny]
#
# --data   FER2013 in the Kaggle layout (default: fer2013.zip in the repository root; copy it there, and do
#          not commit it: git does not ignore it)
# --out    where the archive gpu_study.tar.gz goes (default: $OUT when set, else results/gpu_study)
# --minutes  wall-time budget of the training runs together; snakemake is stopped there (default 9)
# --tiny   the synthetic tiny preset on the CPU instead (what tests/test_gpu_study.py runs)
# Installs the package (pip install -e '.[pipeline]') into .venv when it is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=fer2013.zip
OUT_DIR=${OUT:-results/gpu_study}
MINUTES=9
TINY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --data) DATA=$2; shift 2 ;;
        --out) OUT_DIR=$2; shift 2 ;;
        --minutes) MINUTES=$2; shift 2 ;;
        --tiny) TINY=1; shift ;;
        *) echo "gpu_study: unknown argument $1" >&2; exit 2 ;;
    esac
done

PY=${PYTHON:-python3}
if [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
elif ! "$PY" -c "import ferflow, snakemake" 2>/dev/null; then
    echo "gpu_study: installing ferflow into .venv"
    "$PY" -m venv .venv
    .venv/bin/pip install --quiet -e '.[pipeline,test]'
    PY=.venv/bin/python
fi
BIN=$(dirname "$PY")
export PATH="$(cd "$BIN" && pwd):$PATH"
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-study.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$PY" -c "from ferflow.device import cpu_kind; import torch; print('torch', torch.__version__, '| CUDA', \
torch.cuda.is_available() and torch.cuda.get_device_name(0), '| CPU', cpu_kind())" | tee "$WORK/machine.txt"

# phase name -> presets; each phase has its own results/<dataset>-<phase>/ (the fast and long recipes both
# train fernetfast/final)
if [ "$TINY" = 1 ]; then
    phases=("tiny:workflow/presets/tiny.yaml")
    printf 'dataset: {name: tiny, source: synthetic, synthetic: {train: 280, test: 70}}\ntrain: {device: cpu}\n' \
        > "$WORK/device.yaml"
else
    [ -f "$DATA" ] || { echo "gpu_study: $DATA not found: place FER2013 (Kaggle layout zip) there or pass --data" >&2; exit 1; }
    echo "== CUDA smoke test (first thing on a CUDA machine)"
    "$BIN/pytest" -q -x tests/test_cuda_smoke.py
    phases=("fast:workflow/presets/fast.yaml" "long:workflow/presets/fast.yaml workflow/presets/long.yaml")
    printf 'dataset: {name: fer2013, source: %s}\naffectnet: {enabled: false}\ntrain: {device: cuda, threads: 4}\n' \
        "$(realpath "$DATA")" > "$WORK/device.yaml"
fi

start=$(date +%s)
histories=()
results=()
for phase in "${phases[@]}"; do
    name=${phase%%:*}
    read -r -a presets <<< "${phase#*:}"
    dataset=$("$PY" -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['dataset']['name'])" "$WORK/device.yaml")-$name
    printf 'dataset: {name: %s}\n' "$dataset" > "$WORK/$name.yaml"
    left=$((MINUTES * 60 - $(date +%s) + start))
    [ "$left" -gt 30 ] || { echo "gpu_study: no time left for phase $name"; break; }
    echo "== phase $name: training through the DAG into results/$dataset ($left s left)"
    status=0
    timeout --signal=INT "$left" "$BIN/snakemake" --cores all --resources gpu=1 --keep-going \
        --configfile "${presets[@]}" "$WORK/device.yaml" "$WORK/$name.yaml" -- train_all || status=$?
    [ "$status" = 0 ] || echo "gpu_study: phase $name: snakemake stopped with status $status (budget or a failed job)"
    stage=$("$PY" -c "import yaml,sys; c=yaml.safe_load(open(sys.argv[1])); print('rgb' if c.get('rgb', True) else 'balanced')" \
        "${presets[0]}")
    for history in "results/$dataset"/runs/*/*/seed*/history.csv; do
        [ -f "$history" ] || continue
        run=${history#"results/$dataset/runs/"}
        histories+=(--history "$name:${run%/history.csv}=$history:results/$dataset/data/$stage")
    done
    results+=("results/$dataset")
done
if [ ${#histories[@]} -gt 0 ]; then
    "$PY" benchmarks/time_to_accuracy.py "${histories[@]}" --out "$WORK/time_to_accuracy" | tee "$WORK/time_to_accuracy.txt"
fi
files=()
for root in "${results[@]}"; do
    while IFS= read -r f; do files+=("$f"); done < <(find "$root/runs" "$root/benchmarks" -type f \
        \( -name best.pt -o -name history.csv -o -name '*.json' -o -name '*.tsv' -o -name '*.log' \) 2>/dev/null)
done
tar -czf "$OUT_DIR/gpu_study.tar.gz" -C "$WORK" --exclude=device.yaml . -C "$PWD" "${files[@]}"
echo "wrote $OUT_DIR/gpu_study.tar.gz"
