#!/usr/bin/env bash
# What checkpointing costs: `ddp train --workers 2 --max-steps 400` (ring mode, batch 64, full MNIST)
# without periodic checkpoints, against the same run with `--checkpoint-every EVERY` (default 100: 4
# checkpoints; the state fetched from a replica at the step, then written crash-safe in the background), in
# interleaved rounds. Both write the one checkpoint at the end of the run (ddp train always keeps its
# coordinator resumable). Prints samples/s of each run (training time, from its done event), the
# ratio, and the checkpoints' size and write time. Usage: bench/checkpoint-overhead.sh [ROUNDS [EVERY]]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
every=${2:-100}
cli=packages/cli/dist/main.js
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # $1: plain|periodic -> prints samples/s
  local extra=()
  [ "$1" = periodic ] && extra=(--checkpoint-every "$every")
  rm -rf "$tmp/ck"
  node $cli train --workers 2 --max-steps 400 --seed 42 --no-eval --limit-test 200 --checkpoint-dir "$tmp/ck" "${extra[@]}" --log-format json > "$tmp/$1.json" 2> "$tmp/err.txt"
  grep '"checkpoint"' "$tmp/$1.json" >> "$tmp/checkpoints.json" || true
  grep '"done"' "$tmp/$1.json" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(Math.round(JSON.parse(s).samplesPerSec)))'
}
echo "round plain every$every ratio"
for r in $(seq 1 "$rounds"); do
  p=$(run plain); c=$(run periodic)
  echo "$r $p $c $(node -e "console.log(($c/$p).toFixed(3))")"
done
node -e '
  const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((x) => JSON.parse(x));
  const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
  console.log(`checkpoints: ${l.length}, bytes ${med(l.map((e) => e.bytes))}, write time median ${(med(l.map((e) => e.seconds)) * 1000).toFixed(1)} ms (min ${(Math.min(...l.map((e) => e.seconds)) * 1000).toFixed(1)}, max ${(Math.max(...l.map((e) => e.seconds)) * 1000).toFixed(1)})`);
' "$tmp/checkpoints.json"
