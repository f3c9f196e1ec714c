#!/usr/bin/env bash
# The prepared GPU script (issue 22): on a CUDA machine, in about 10 minutes, run the CUDA smoke test, then the
# fast recipe (workflow/presets/fast.yaml) and the long one (workflow/presets/long.yaml) through the DAG on the
# GPU, evaluate every finished run on the test split, and pack their checkpoints (last.pt of a run the budget
# cut), histories, metrics, benchmark files, logs and the time-to-accuracy CSV and figure into one archive.
#
#   benchmarks/gpu_study.sh [--data fer2013.zip] [--out DIR] [--minutes 9] [--wheels DIR] [--tiny]
#
# --data     FER2013 in the Kaggle layout (default: fer2013.zip beside the tree, i.e. in the repository root;
#            it is git-ignored: copy it there, never commit it)
# --out      where the archive gpu_study.tar.gz goes (default: $OUT when set, else results/gpu_study)
# --minutes  wall-time budget of the training runs together; snakemake is stopped there (default 9)
# --wheels   the wheels folder ferflow's missing dependencies install from, offline (default: wheels/ beside the
#            tree; `pip download` fills it on a machine with network, see the README)
# --tiny     the synthetic tiny preset on the CPU, CUDA not required (what tests/test_gpu_study.py runs)
#
# Runs on the node's own Python ($PYTHON, else python3) with its own torch and torchvision (a site PyTorch built
# for the node's CUDA): no venv is created and torch is never installed. ferflow runs from src/ (PYTHONPATH); of
# its other dependencies, only those missing are installed, with pip --no-index from the wheels folder. Every tool
# runs as "$PY" -m <tool>. Exits non-zero, with one line, where CUDA cannot train (unless --tiny), and after
# packing what finished when the smoke test or a job failed.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=fer2013.zip
OUT_DIR=${OUT:-results/gpu_study}
MINUTES=9
WHEELS=wheels
TINY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --data) DATA=$2; shift 2 ;;
        --out) OUT_DIR=$2; shift 2 ;;
        --minutes) MINUTES=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --tiny) TINY=1; shift ;;
        *) echo "gpu_study: unknown argument $1" >&2; exit 2 ;;
    esac
done
fail() { echo "gpu_study: $*" >&2; exit 1; }

PY=$(command -v "${PYTHON:-python3}") || fail "no ${PYTHON:-python3}: set PYTHON to the node's Python with PyTorch"
"$PY" -c "import torch, torchvision" 2>/dev/null \
    || fail "$PY cannot import torch and torchvision: set PYTHON to the node's Python with PyTorch (e.g. module load)"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [ "$TINY" = 0 ]; then
    export FERFLOW_REQUIRE_CUDA=1  # the smoke test fails, not skips, where CUDA cannot train
    problem=$("$PY" -m ferflow.gpu_check 2>&1) || fail "$problem"
    [ -f "$DATA" ] || fail "$DATA not found: place FER2013 (Kaggle layout zip) there or pass --data"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-study.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ferflow's requirements (the model's, the pipeline's, pytest) that the node lacks, from the wheels folder only
# (pip --isolated: no index or find-links from the environment); torch and torchvision are the node's, checked
# against ferflow's ranges and never passed to pip
"$PY" - > "$WORK/requirements.txt" 2> "$WORK/ranges.txt" <<'EOF' || fail "$(tail -1 "$WORK/ranges.txt")"
import re
import sys
import tomllib
from importlib.metadata import version

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
wanted = [*project["dependencies"], *extras["pipeline"], *(r for r in extras["test"] if r.startswith("pytest"))]
for requirement in wanted:
    name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
    if name not in ("torch", "torchvision"):
        print(requirement)
        continue
    try:
        from packaging.requirements import Requirement
    except ImportError:  # no packaging on the node: the ranges go unchecked
        continue
    if not Requirement(requirement).specifier.contains(version(name), prereleases=True):
        sys.exit(f"the node's {name} {version(name)} is outside ferflow's range {requirement}")
EOF
if ! "$PY" -m pip install --isolated --no-index --find-links "$WHEELS" --requirement "$WORK/requirements.txt" \
    > "$WORK/pip.log" 2>&1; then
    missing=$(grep -o "No matching distribution found for [^ ]*" "$WORK/pip.log" | head -1 || true)
    fail "installing the missing dependencies from $WHEELS failed: ${missing:-$(grep -m1 -i error "$WORK/pip.log")}"
fi
grep -h "^Successfully installed" "$WORK/pip.log" || true

mkdir -p "$WORK/bin"  # the DAG's jobs call `ferflow`: this Python's
printf '#!/bin/sh\nexec "%s" -m ferflow.cli "$@"\n' "$PY" > "$WORK/bin/ferflow"
chmod +x "$WORK/bin/ferflow"
export PATH="$WORK/bin:$PATH"
mkdir -p "$OUT_DIR"
mkdir "$WORK/pack"

"$PY" -c "from ferflow.device import cpu_kind; import torch; print('torch', torch.__version__, '| CUDA', \
torch.cuda.is_available() and torch.cuda.get_device_name(0), '| CPU', cpu_kind())" | tee "$WORK/pack/machine.txt"

failed=()
# phase name -> presets; each phase has its own results/<dataset>-<phase>/ (the fast and long recipes both
# train fernetfast/final)
if [ "$TINY" = 1 ]; then
    phases=("tiny:workflow/presets/tiny.yaml")
    printf 'dataset: {name: tiny, source: synthetic, synthetic: {train: 280, test: 70}}\ntrain: {device: cpu}\n' \
        > "$WORK/device.yaml"
else
    echo "== CUDA smoke test (first thing on a CUDA machine)"
    "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_smoke.py | tee "$WORK/pack/cuda_smoke.txt" \
        || failed+=("the CUDA smoke test")
    phases=("fast:workflow/presets/fast.yaml" "long:workflow/presets/fast.yaml workflow/presets/long.yaml")
    printf 'dataset: {name: fer2013, source: %s}\naffectnet: {enabled: false}\ntrain: {device: cuda, threads: 4}\n' \
        "$(realpath "$DATA")" > "$WORK/device.yaml"
fi

start=$(date +%s)
runs=()
results=()
for phase in "${phases[@]}"; do
    name=${phase%%:*}
    read -r -a presets <<< "${phase#*:}"
    dataset=$("$PY" -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['dataset']['name'])" "$WORK/device.yaml")-$name
    printf 'dataset: {name: %s}\n' "$dataset" > "$WORK/$name.yaml"
    left=$((MINUTES * 60 - $(date +%s) + start))
    [ "$left" -gt 30 ] || { echo "gpu_study: no time left for phase $name"; failed+=("phase $name (no time left)"); break; }
    echo "== phase $name: training and evaluating through the DAG into results/$dataset ($left s left)"
    status=0
    timeout --signal=INT "$left" "$PY" -m snakemake --cores all --resources gpu=1 --keep-going \
        --configfile "${presets[@]}" "$WORK/device.yaml" "$WORK/$name.yaml" -- train_all || status=$?
    if [ "$status" = 124 ]; then
        echo "gpu_study: phase $name: stopped at the time budget; unfinished runs are packed with their last.pt"
    elif [ "$status" != 0 ]; then
        failed+=("phase $name (snakemake status $status: a job failed, see its log in the archive)")
    fi
    stage=$("$PY" -c "import yaml,sys; c=yaml.safe_load(open(sys.argv[1])); print('rgb' if c.get('rgb', True) else 'balanced')" \
        "${presets[0]}")
    for run in "results/$dataset"/runs/*/*/seed*/; do
        [ -f "$run/history.csv" ] || [ -f "$run/last.pt" ] || continue
        run=${run%/}
        runs+=(--run "$name:${run#"results/$dataset/runs/"}=$run:results/$dataset/data/$stage")
    done
    results+=("results/$dataset")
done
if [ ${#runs[@]} -gt 0 ]; then
    "$PY" benchmarks/time_to_accuracy.py "${runs[@]}" --out "$WORK/pack/time_to_accuracy" \
        | tee "$WORK/pack/time_to_accuracy.txt" || failed+=("time_to_accuracy.py")
fi
files=()
packed=()
for root in "${results[@]}"; do
    while IFS= read -r f; do files+=("$f"); done < <(find "$root/runs" "$root/benchmarks" "$root/logs" -type f \
        \( -name best.pt -o -name history.csv -o -name '*.json' -o -name '*.tsv' -o -name '*.log' -o -name '*.csv' \
        -o \( -name last.pt -path '*/seed*' \) \) 2>/dev/null)
done
for f in "${files[@]}"; do  # a finished run's last.pt adds nothing to its best.pt and history
    if [ "${f##*/}" = last.pt ] && [ -f "${f%/last.pt}/history.csv" ]; then continue; fi
    packed+=("$f")
done
tar -czf "$OUT_DIR/gpu_study.tar.gz" -C "$WORK/pack" . -C "$PWD" ${packed[@]+"${packed[@]}"}
echo "wrote $OUT_DIR/gpu_study.tar.gz"
if [ ${#failed[@]} -gt 0 ]; then
    fail "failed: $(IFS=';'; echo "${failed[*]}")"
fi
