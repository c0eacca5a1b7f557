#!/usr/bin/env bash
# Issue 11's measurement: training samples/s across network namespaces (bench/netns.sh: the
# coordinator and N workers each in their own namespace, every link shaped with netem: 50 us one way
# and RATE each way per NIC), for N workers, link rates and star / ring / ring+fp16, beside what
# `ddp bench simulate` predicts for the same N, rate and encoding; and the allreduce alone, measured in
# the same namespaces, against the simulator (`ddp bench simulate --check FILE --no-fit`).
# The three modes alternate over ROUNDS rounds (rotating which goes first); the table gives the median
# samples/s and the median compute and allreduce ms per step from the runs' done events. Needs root.
# Prints a markdown table; keeps the raw files in bench/results/multihost-<time>/.
#
# Usage: sudo [MATRIX_OUT=DIR] bench/multihost-matrix.sh [STEPS] [N,N..] [RATE,RATE..] [ROUNDS]   (default 150 2,4 100mbit,1gbit 3)
set -euo pipefail
STEPS=${1:-150}; NS=${2:-2,4}; RATES=${3:-100mbit,1gbit}; ROUNDS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
DDP="node $HERE/../packages/cli/dist/main.js"
# MATRIX_OUT=DIR continues an interrupted matrix there: runs already done are kept.
OUT=${MATRIX_OUT:-"$HERE/results/multihost-$(date -u +%Y%m%d-%H%M%S)"}
mkdir -p "$OUT"
DELAY=50us
MODES=(star ring fp16)
echo "| N | link | mode | samples/s (median of $ROUNDS) | predicted samples/s | compute ms/step | allreduce ms/step | allreduce alone: measured ms | predicted ms |"
echo "|---|------|------|------:|------:|------:|------:|------:|------:|"
for N in ${NS//,/ }; do
  for RATE in ${RATES//,/ }; do
    ar="$OUT/allreduce-$N-$RATE.json"
    [[ -s $ar ]] || bash "$HERE/netns.sh" allreduce "$N" --delay "$DELAY" --rate "$RATE" -- --sizes 93322 --algo star,ring --compress none,fp16 --iters 10 --out "$ar" >"$OUT/allreduce-$N-$RATE.log" 2>&1
    for compress in none fp16; do
      $DDP bench simulate --workers "$N" --bandwidth "$RATE" --latency "$DELAY" --scaling strong --batch-size 64 --compress "$compress" \
        --check "$ar" --no-fit --out "$OUT/simulate-$N-$RATE-$compress.json" >"$OUT/simulate-$N-$RATE-$compress.txt" 2>&1
    done
    for ((r = 0; r < ROUNDS; r++)); do
      for ((k = 0; k < ${#MODES[@]}; k++)); do
        MODE=${MODES[(k + r) % ${#MODES[@]}]}
        algo=$MODE; compress=none
        [[ $MODE == fp16 ]] && { algo=ring; compress=fp16; }
        run="$OUT/train-$N-$RATE-$MODE-$r"
        grep -q '"event":"done"' "$run.ndjson" 2>/dev/null && continue
        bash "$HERE/netns.sh" train "$N" --delay "$DELAY" --rate "$RATE" -- --allreduce "$algo" --compress "$compress" --max-steps "$STEPS" \
          --no-eval --limit-test 100 --backend wasm --log-format json --out "$run.model" >"$run.ndjson" 2>"$run.log" || echo "failed: $run.log" >&2
        rm -rf "$run.model"
      done
    done
    python3 - "$OUT" "$N" "$RATE" "$ROUNDS" <<'PY'
import json, statistics, sys
out, n, rate, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for mode in ['star', 'ring', 'fp16']:
    algo, compress = ('ring', 'fp16') if mode == 'fp16' else (mode, 'none')
    dones = []
    for r in range(rounds):
        try:
            lines = [json.loads(l) for l in open(f'{out}/train-{n}-{rate}-{mode}-{r}.ndjson') if l.startswith('{')]
            dones += [e for e in lines if e['event'] == 'done']
        except FileNotFoundError:
            pass
    sim = json.load(open(f'{out}/simulate-{n}-{rate}-{compress}.json'))
    pred = next(x for x in sim['rows'] if x['workers'] == n and x['algo'] == algo and x['params'] == 93322)
    chk = [x for x in sim['check']['rows'] if x['workers'] == n and x['algo'] == algo and x['compress'] == compress and x['floats'] == 93322]
    med = lambda k: statistics.median(k) if k else float('nan')
    sps = med([d['samplesPerSec'] for d in dones])
    comp = med([d['breakdown']['compute'] for d in dones])
    # star's breakdown says communication (to the coordinator and back), ring's allreduce.
    comm = med([d['breakdown'].get('allreduce', d['breakdown'].get('communication', float('nan'))) for d in dones])
    ams = f"{chk[0]['medianMs']:.1f}" if chk else '?'
    pms = f"{chk[0]['predictedMs']:.1f}" if chk else '?'
    print(f"| {n} | {rate} | {mode} | {sps:.0f} | {pred['samplesPerSec']:.0f} | {comp:.1f} | {comm:.1f} | {ams} | {pms} |")
PY
  done
done
echo
echo "raw files: $OUT"
