#!/bin/bash
# The zoo's GPU check (issue 21): `--preset benchmarl` at its full 10M frames on four scenarios and three large
# zoo entries, all at once on one GPU, each stopped after $SECONDS_EACH (SIGTERM: it saves after the
# iteration in progress), then every run folder packed into $OUT/runs.tgz (metrics.csv has each iteration's
# frames and wall time; evaluate the policies afterwards on any machine).
# Usage: bash benchmarks/gpu_zoo.sh   [SECONDS_EACH=480 OUT=gpu-runs DEVICE=cuda]
# Where wheels for the packages the GPU machine lacks sit in .whl/, they are installed first (to /tmp/site);
# an H200 with torch 2.11 needed torchrl, tensordict, orjson, pydantic-core (cp312 wheels) and vmas, gym,
# gym-notices, pyglet, pyvers, hoptorch, importlib_metadata, typer, pydantic, annotated-types,
# typing-inspection, typing-extensions. Run on 2026-12-04 with SECONDS_EACH=460: docs/benchmarks.md. All at
# once, the runs share the GPU by time-slicing (99% busy): each one's rate is a floor, not its rate alone.
set -u
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MPLBACKEND=Agg
OUT=${OUT:-gpu-runs}; RUNS=$(mktemp -d); mkdir -p "$OUT"
nvidia-smi -L
python3 -c "import torch, torchrl, vmas; print(torch.__version__, torch.cuda.is_available(), torchrl.__version__, vmas.__version__)" || exit 1
python3 -m marlnav_cli train --help > /dev/null || exit 1
PIDS=""
start() {  # NAME, then train's options
    local name=$1; shift
    (s=$(date +%s); timeout -s TERM -k 60 "${SECONDS_EACH:-480}" python3 -m marlnav_cli train --device "${DEVICE:-cuda}" \
        --threads 2 --quiet --seed 100 --out "$RUNS/$name" "$@" > "$RUNS/$name.log" 2>&1
     echo "rc=$? wall=$(( $(date +%s) - s ))" >> "$RUNS/$name.log") &
    PIDS="$PIDS $!"
}
# BenchMARL's settings at each entry's task (600 envs of the episode length, as benchmarks/zoo.py runs them).
start benchmarl-dispersion --preset benchmarl --scenario dispersion --n-agents 4 --max-steps 100 --frames-per-batch 60000
start benchmarl-passage --preset benchmarl --scenario passage --n-agents 5 --max-steps 100 --frames-per-batch 60000
start benchmarl-wheel --preset benchmarl --scenario wheel --n-agents 4 --max-steps 100 --frames-per-batch 60000
start benchmarl-balance --preset benchmarl --scenario balance --n-agents 3 --max-steps 500 --frames-per-batch 300000
start zoo-balance --scenario balance
start zoo-wheel --scenario wheel
start zoo-discovery --scenario discovery
( while true; do
    sleep 45
    { date +%T; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
      for f in "$RUNS"/*/metrics.csv; do echo "$f $(tail -1 "$f" | cut -d, -f1-3)"; done; } >> "$RUNS/progress.txt"
    cp "$RUNS/progress.txt" "$OUT/"
  done ) &
monitor=$!
wait $PIDS
kill $monitor
tail -n 2 "$RUNS"/*.log
tar czf "$OUT/runs.tgz" -C "$RUNS" . && ls -la "$OUT"
