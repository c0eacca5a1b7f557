#!/usr/bin/env bash
# Multi-host experiments on one machine: every ddp process in its own network namespace, the
# namespaces joined by veth pairs on a bridge, each "NIC" shaped with netem (one-way delay, rate).
# Needs root (ip netns, tc); not part of CI. Everything it creates lives in namespaces it creates
# (addresses 10.231.0.0/24 inside them; nothing is added to the host's own network), and it is all
# removed on exit, Ctrl-C included.
#
# Usage:
#   sudo bench/netns.sh allreduce N [--delay 50us] [--rate 10gbit] [--shaper auto|tbf] [-- ddp bench allreduce flags]
#   sudo bench/netns.sh train N     [--delay 50us] [--rate 10gbit] [--shaper auto|tbf] [--tls] [--logs DIR]
#                                   [-- ddp coordinator start flags]
#
#   allreduce  N members of `ddp bench allreduce` (rank r in namespace m<r>, address 10.231.0.<r+1>);
#              the parent runs here and talks to them over pipes
#   train      the coordinator in m0 (10.231.0.1:7070) and N `ddp worker`s in m1..mN
#
# Shaping, per namespace: its eth0 sends with `netem delay D rate R` and the bridge port facing it
# sends to it with `netem rate R`, so each NIC carries at most R each way and every packet takes
# D one way (a round trip between two members is 2D). --delay 0us --rate 0 turns shaping off.
# --shaper tbf shapes the rate with a token bucket (tc tbf) and applies no delay (as on a kernel
# without netem).
#
# train --tls: `ddp certs` makes a job CA and a node certificate for the namespaces' addresses; the
# coordinator serves wss:// with it and the workers verify it and link to each other over mutual TLS.
# train --logs DIR: each worker's output goes to DIR/worker-<i>.log (default: discarded). The script
# exits with the coordinator's code, or 1 if it was 0 and a worker ended otherwise.
#
# Examples:
#   sudo bench/netns.sh allreduce 8 --delay 50us --rate 10gbit -- --sizes 93322,1000000 --iters 10
#   sudo bench/netns.sh train 2 --delay 1ms --rate 1gbit -- --max-steps 100 --log-format json
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }

[[ $# -ge 2 ]] || usage
MODE=$1; N=$2; shift 2
[[ $MODE == allreduce || $MODE == train ]] || { echo "netns.sh: mode must be allreduce or train, got '$MODE'" >&2; exit 2; }
[[ $N =~ ^[0-9]+$ && $N -ge 1 && $N -le 200 ]] || { echo "netns.sh: N must be a number in 1..200, got '$N'" >&2; exit 2; }
DELAY=50us; RATE=10gbit; SHAPER=auto; TLS=0; LOGS=
while [[ $# -gt 0 ]]; do
  case $1 in
    --delay) DELAY=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --shaper) SHAPER=$2; [[ $SHAPER == auto || $SHAPER == tbf ]] || { echo "netns.sh: --shaper must be auto or tbf, got '$SHAPER'" >&2; exit 2; }; shift 2 ;;
    --tls) TLS=1; shift ;;
    --logs) LOGS=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "netns.sh: unknown option '$1' (flags for ddp go after --)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "netns.sh: needs root (ip netns, tc)" >&2; exit 1; }
command -v ip >/dev/null && command -v tc >/dev/null || { echo "netns.sh: needs iproute2 (ip, tc)" >&2; exit 1; }

HERE=$(cd "$(dirname "$0")" && pwd)
MAIN="$HERE/../packages/cli/dist/main.js"
[[ -f $MAIN ]] || { echo "netns.sh: $MAIN not found; run npm run build first" >&2; exit 1; }
NODE=$(command -v node)

# Names unique to this run, so two runs (or a leftover) do not collide.
P="ddp$$"
HUB="$P-hub"
HOSTS=$([[ $MODE == train ]] && echo $((N + 1)) || echo "$N")
ns() { echo "$P-m$1"; }
addr() { echo "10.231.0.$(($1 + 1))"; }

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  # Processes in our namespaces first (ip netns pids lists exactly those), then the namespaces.
  for ((i = 0; i < HOSTS; i++)); do
    for pid in $(ip netns pids "$(ns "$i")" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$(ns "$i")" 2>/dev/null || true
  done
  ip netns del "$HUB" 2>/dev/null || true
  [[ -n ${CERTS:-} ]] && rm -rf "$CERTS"
  exit "$code"
}
trap cleanup EXIT INT TERM

EGRESS=(); INGRESS=()
if [[ ! $DELAY =~ ^0+(us|ms|s)?$ ]]; then EGRESS+=(delay "$DELAY"); fi
if [[ $RATE != 0 ]]; then EGRESS+=(rate "$RATE"); INGRESS+=(rate "$RATE"); fi

# Some kernels are built without sch_netem (CONFIG_NET_SCH_NETEM). Then the rate is enforced with a
# token bucket (tbf) and the delay is NOT applied; this is said loudly, and the run goes on.
NETEM=1
probe=$P-probe
ip netns add "$probe"
ip netns exec "$probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null || NETEM=0
ip netns del "$probe"
if [[ $SHAPER == tbf ]]; then
  NETEM=0
  [[ ${EGRESS[0]:-} == delay ]] && echo "netns.sh: --shaper tbf: --delay $DELAY is not applied" >&2
elif [[ $NETEM == 0 && ${EGRESS[0]:-} == delay ]]; then
  echo "netns.sh: WARNING: this kernel has no netem qdisc: --delay $DELAY is NOT applied; --rate $RATE uses tbf" >&2
fi

# "10gbit" -> bits per second, for the token bucket's burst.
rate_bits() {
  local n=${1%%[a-zA-Z]*} u=${1##*[0-9.]}
  case ${u,,} in
    bit|'') echo "${n%.*}" ;; kbit) echo $((${n%.*} * 1000)) ;; mbit) echo $((${n%.*} * 1000000)) ;;
    gbit) echo $((${n%.*} * 1000000000)) ;; *) echo "netns.sh: --rate: use bit, kbit, mbit or gbit, got '$1'" >&2; exit 2 ;;
  esac
}

shape() { # namespace device [delay D] [rate R]
  local where=$1 dev=$2; shift 2
  [[ $# -gt 0 ]] || return 0
  if [[ $NETEM == 1 ]]; then
    ip netns exec "$where" tc qdisc add dev "$dev" root netem "$@" limit 100000
  elif [[ $RATE != 0 ]]; then
    # 1 ms worth of bytes, and never less than one 64 KB GSO packet plus headers: a larger bucket
    # lets whole small vectors through at memory speed, a smaller one stalls big packets.
    local burst=$(($(rate_bits "$RATE") / 8 / 1000))
    ((burst < 98304)) && burst=98304
    ip netns exec "$where" tc qdisc add dev "$dev" root tbf rate "$RATE" burst "$burst" latency 100ms
  fi
}

ip netns add "$HUB"
ip -n "$HUB" link set lo up
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" link set br0 up
for ((i = 0; i < HOSTS; i++)); do
  m=$(ns "$i")
  ip netns add "$m"
  ip -n "$m" link set lo up
  # Both ends are created inside our namespaces: the host's own interfaces are never touched.
  ip -n "$HUB" link add "vm$i" type veth peer name eth0 netns "$m"
  ip -n "$HUB" link set "vm$i" master br0
  ip -n "$HUB" link set "vm$i" up
  ip -n "$m" addr add "$(addr "$i")/24" dev eth0
  ip -n "$m" link set eth0 up
  shape "$m" eth0 "${EGRESS[@]}"
  shape "$HUB" "vm$i" "${INGRESS[@]}"
done
shaping="netem ${EGRESS[*]:-off} (toward each member: ${INGRESS[*]:-off})"
if [[ $NETEM == 0 && $RATE != 0 ]]; then shaping="tbf rate $RATE each way, no delay"; fi
if [[ ${#EGRESS[@]} == 0 ]]; then shaping='no shaping'; fi
echo "netns.sh: $HOSTS namespaces $P-m0..$P-m$((HOSTS - 1)) on bridge $HUB/br0, 10.231.0.1..$(addr $((HOSTS - 1))); $shaping" >&2
if command -v ping >/dev/null; then ip netns exec "$(ns 0)" ping -c 3 -i 0.2 -q "$(addr $((HOSTS - 1)))" >&2 || true; fi

if [[ $MODE == allreduce ]]; then
  hosts=$(for ((i = 0; i < N; i++)); do addr "$i"; done | paste -sd,)
  "$NODE" "$MAIN" bench allreduce --workers "$N" --hosts "$hosts" --exec-prefix "ip netns exec $P-m{rank}" "$@"
else
  DDP_TOKEN=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  export DDP_TOKEN
  SCHEME=ws; COORD_TLS=(); WORKER_TLS=()
  if [[ $TLS == 1 ]]; then
    CERTS=$(mktemp -d)
    hosts=$(for ((i = 0; i < HOSTS; i++)); do addr "$i"; done | paste -sd,)
    "$NODE" "$MAIN" certs --out "$CERTS" --hosts "$hosts" >&2
    SCHEME=wss
    COORD_TLS=(--tls-cert "$CERTS/node.crt" --tls-key "$CERTS/node.key")
    WORKER_TLS=(--tls-ca "$CERTS/ca.crt" --tls-cert "$CERTS/node.crt" --tls-key "$CERTS/node.key")
  fi
  [[ -n $LOGS ]] && mkdir -p "$LOGS"
  ip netns exec "$(ns 0)" "$NODE" "$MAIN" coordinator start --workers "$N" --host "$(addr 0)" --port 7070 "${COORD_TLS[@]}" "$@" &
  coord=$!
  workers=()
  for ((i = 1; i <= N; i++)); do
    log=/dev/null; [[ -n $LOGS ]] && log="$LOGS/worker-$i.log"
    ip netns exec "$(ns "$i")" "$NODE" "$MAIN" worker --connect "$SCHEME://$(addr 0):7070" "${WORKER_TLS[@]}" >"$log" 2>&1 &
    workers+=($!)
  done
  code=0; wait "$coord" || code=$?
  for ((i = 1; i <= N; i++)); do
    wcode=0; wait "${workers[i - 1]}" || wcode=$?
    if [[ $wcode != 0 ]]; then
      echo "netns.sh: worker $i (in $(ns "$i"), $(addr "$i")) exited with code $wcode" >&2
      [[ $code == 0 ]] && code=1
    fi
  done
  exit "$code"
fi
