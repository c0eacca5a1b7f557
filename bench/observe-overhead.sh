#!/usr/bin/env bash
# What watching a run costs: `ddp train --workers 2 --batch-size 128 --max-steps 300` with nothing
# watching, against the same run with a live dashboard client (the SSE stream /events, as the page
# reads it) and a /metrics scrape every second (one watcher process, like a browser tab and a
# Prometheus server), in interleaved rounds. Prints samples/s of each run
# (from its done event) and the ratio watched/plain per round. Usage: bench/observe-overhead.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cli=packages/cli/dist/main.js
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # $1: plain|watched -> prints samples/s
  node $cli train --workers 2 --batch-size 128 --max-steps 300 --seed 42 --no-eval --limit-test 200 --log-format json > "$tmp/out.json" 2> "$tmp/err.txt" &
  local launcher=$! sse="" scrape=""
  if [ "$1" = watched ]; then
    local url=""
    for _ in $(seq 1 200); do url=$(grep -o 'dashboard: http[^ ]*' "$tmp/err.txt" | head -1 | cut -d' ' -f2 || true); [ -n "$url" ] && break; sleep 0.05; done
    local base=${url%%/\?*} tok=${url##*token=}
    # One watcher process, as a browser tab and a Prometheus server would be: one SSE connection held
    # open, and a scrape a second over a kept-alive connection.
    node -e '
      const http = require("node:http");
      const [base, tok] = process.argv.slice(1);
      const agent = new http.Agent({ keepAlive: true });
      http.get(`${base}/events?token=${tok}`, (res) => { res.resume(); res.on("end", () => process.exit(0)); }).on("error", () => process.exit(0));
      setInterval(() => http.get(`${base}/metrics?token=${tok}`, { agent }, (res) => res.resume()).on("error", () => {}), 1000);
    ' "$base" "$tok" & sse=$!
    scrape=$sse
  fi
  wait $launcher
  [ -n "$sse" ] && { kill $sse $scrape 2>/dev/null || true; wait $sse $scrape 2>/dev/null || true; }
  grep '"done"' "$tmp/out.json" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(Math.round(JSON.parse(s).samplesPerSec)))'
}
echo "round plain watched ratio"
for r in $(seq 1 "$rounds"); do
  p=$(run plain); w=$(run watched)
  echo "$r $p $w $(node -e "console.log(($w/$p).toFixed(3))")"
done
