#!/usr/bin/env bash
# Performs the steps of deploy/Dockerfile without docker, for machines that cannot pull images (and
# for test/deploy-docker.test.ts): each stage is built in a clean temporary folder, then the image's
# entrypoint is started as an unprivileged user, the Dockerfile's HEALTHCHECK is run against it, and
# the process's uid is checked. The steps are read from the Dockerfile itself, so the two cannot drift:
# an instruction this script does not know makes it fail.
#
#   deploy/dockerfile-steps.sh [--keep] [-- ARGS...]
#
# ARGS are what `docker run IMAGE ARGS` would pass to the entrypoint (default: coordinator start
# --workers 1). The run gets DDP_PORT (a free port) and DDP_TOKEN (random, never printed), like
# `docker run -e`. --keep leaves the temporary folder (its path is printed) instead of removing it.
#
# What differs from docker: the base image is this machine (its node, npm and PATH; the Dockerfile's
# FROM must name the same Node major), the image's absolute paths (WORKDIR, ENV) are mapped into the
# stage's folder, npm uses this machine's cache, and the image's USER is played by a temporary
# system user (created with useradd when run as root, deleted at the end; otherwise the current user).
# Exit codes: 0 every check passed; 1 a step or a check failed; 77 cannot run here (reason printed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOCKERFILE=${DOCKERFILE:-$HERE/Dockerfile}
CONTEXT=${CONTEXT:-$(cd "$HERE/.." && pwd)}
IGNORE_FILE=$DOCKERFILE.dockerignore

say() { printf 'dockerfile-steps: %s\n' "$*"; }
die() { printf 'dockerfile-steps: FAILED: %s\n' "$*" >&2; exit 1; }
skip() { printf 'dockerfile-steps: SKIPPED: %s\n' "$*" >&2; exit 77; }

KEEP=0
RUN_ARGS=(coordinator start --workers 1)
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1; shift ;;
    --) shift; RUN_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[ -f "$DOCKERFILE" ] || die "no Dockerfile at $DOCKERFILE"
command -v node >/dev/null || skip "node is not on PATH (it stands in for the base image's)"
command -v npm >/dev/null || skip "npm is not on PATH"

# --- the user that plays the image's USER -------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddp-dockerfile-steps.XXXXXX")
chmod 755 "$TMP" # the unprivileged user must reach the stages' files
CREATED_USER=''
ENTRY_PID=''
cleanup() {
  local rc=$?
  if [ -n "$ENTRY_PID" ] && kill -0 "$ENTRY_PID" 2>/dev/null; then
    kill -TERM "$ENTRY_PID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$ENTRY_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$ENTRY_PID" 2>/dev/null || true
  fi
  if [ -n "$CREATED_USER" ]; then
    userdel "$CREATED_USER" 2>/dev/null && say "cleanup: deleted the temporary user $CREATED_USER" || say "cleanup: could not delete the temporary user $CREATED_USER"
  fi
  if [ "$KEEP" = 1 ]; then
    say "cleanup: kept $TMP (--keep)"
  else
    rm -rf "$TMP" && say "cleanup: removed $TMP"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" = 0 ]; then
  command -v useradd >/dev/null && command -v userdel >/dev/null || skip "running as root without useradd/userdel: cannot create an unprivileged user"
  command -v setpriv >/dev/null || skip "running as root without setpriv (util-linux): cannot drop to an unprivileged user"
  RUN_USER="ddpimg$$"
  useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$RUN_USER" 2>"$TMP/useradd.err" || skip "useradd failed: $(tr '\n' ' ' <"$TMP/useradd.err")"
  CREATED_USER=$RUN_USER
  RUN_UID=$(id -u "$RUN_USER")
  RUN_GID=$(id -g "$RUN_USER")
  AS_USER=(setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups --)
  say "running as root: created the temporary system user $RUN_USER (uid $RUN_UID) to play the image's USER"
else
  RUN_USER=$(id -un)
  RUN_UID=$(id -u)
  RUN_GID=$(id -g)
  AS_USER=()
  say "not root: every step runs as the current user $RUN_USER (uid $RUN_UID), the image's USER included"
fi
mkdir -p "$TMP/home"; chown "$RUN_UID:$RUN_GID" "$TMP/home" # the user's HOME
say "build context: $CONTEXT; Dockerfile: $DOCKERFILE; stages under $TMP"

# --- the build context's exclusions (.dockerignore) as tar options ------------------------------
EXCLUDES=()
if [ -f "$IGNORE_FILE" ]; then
  while IFS= read -r pat || [ -n "$pat" ]; do
    pat=${pat%%#*}; pat=$(printf '%s' "$pat" | sed 's/[[:space:]]*$//')
    [ -z "$pat" ] && continue
    case "$pat" in
      '!'*) die "$IGNORE_FILE: exceptions ('$pat') are not supported here" ;;
      '**/'*) EXCLUDES+=(--no-anchored "--exclude=${pat#\*\*/}") ;;
      *) EXCLUDES+=(--anchored "--exclude=${pat#/}") ;;
    esac
  done <"$IGNORE_FILE"
  say "context exclusions from $(basename "$IGNORE_FILE"): $(grep -v '^#' "$IGNORE_FILE" | tr '\n' ' ')"
fi

# --- the state of the stage being built ---------------------------------------------------------
declare -A STAGE_ROOT=()
STAGE_COUNT=0
ROOT=''      # the stage's filesystem
WD=/         # WORKDIR inside the image
STAGE_USER=root
declare -A ENVV=()
ENV_ORDER=()
ENTRYPOINT=()
CMD=()
HEALTH_CMD=''
EXPOSED=()

# An image path as a path here. Values (ENV, ENTRYPOINT) also get it for every path under WORKDIR.
in_root() { case "$1" in /*) printf '%s%s' "$ROOT" "$1" ;; *) printf '%s%s/%s' "$ROOT" "$WD" "$1" ;; esac; }
map_value() {
  local v=$1
  [ "$WD" = / ] && { printf '%s' "$v"; return; }
  printf '%s' "$v" | sed -E "s#(^|[:= ])${WD}(/|:|$| )#\\1${ROOT}${WD}\\2#g"
}
# $NAME and ${NAME} from the stage's ENV, else this machine's (the base image's PATH is this PATH).
expand() {
  local v=$1 out='' name
  while [[ $v =~ ^([^\$]*)\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?(.*)$ ]]; do
    name=${BASH_REMATCH[2]}
    out+=${BASH_REMATCH[1]}
    if [ -n "${ENVV[$name]+x}" ]; then out+=${ENVV[$name]}; else out+=${!name-}; fi
    v=${BASH_REMATCH[3]}
  done
  printf '%s%s' "$out" "$v"
}
# The environment of a step: the image's ENV (PATH from this machine unless ENV sets it), like docker's.
stage_env() {
  local k
  STEP_ENV=("PATH=${ENVV[PATH]:-$PATH}")
  for k in "${ENV_ORDER[@]}"; do [ "$k" = PATH ] || STEP_ENV+=("$k=${ENVV[$k]}"); done
}
json_words() { node -e 'for (const a of JSON.parse(process.argv[1])) { if (typeof a !== "string") process.exit(1); process.stdout.write(a + "\0"); }' "$1"; }

do_from() {
  local image=$1 as=${3:-}
  [ "${2:-}" = "" ] || [ "${2,,}" = as ] || die "FROM $*: expected FROM IMAGE [AS NAME]"
  if [[ $image =~ ^node:([0-9]+) ]]; then
    local want=${BASH_REMATCH[1]} have
    have=$(node -e 'process.stdout.write(process.versions.node.split(".")[0])')
    [ "$want" = "$have" ] || die "FROM $image wants Node $want; this machine has Node $have (run it where they match)"
  else
    die "FROM $image: only node:* images can be stood in for by this machine"
  fi
  ROOT=$TMP/stage$STAGE_COUNT${as:+-$as}
  mkdir -p "$ROOT"
  STAGE_ROOT[$STAGE_COUNT]=$ROOT
  [ -n "$as" ] && STAGE_ROOT[$as]=$ROOT
  STAGE_COUNT=$((STAGE_COUNT + 1))
  WD=/; STAGE_USER=root; ENVV=(); ENV_ORDER=(); ENTRYPOINT=(); CMD=(); HEALTH_CMD=''; EXPOSED=()
  say "FROM $image${as:+ AS $as}: a new stage in $ROOT (base: this machine's Node $(node -v), npm $(npm -v))"
}

do_env() {
  local word k v
  [[ $* == *[\"\']* ]] && die "ENV $*: quotes are not supported here"
  for word in "$@"; do
    [[ $word == *=* ]] || die "ENV $*: expected NAME=VALUE"
    k=${word%%=*}; v=$(map_value "$(expand "${word#*=}")")
    [ -n "${ENVV[$k]+x}" ] || ENV_ORDER+=("$k")
    ENVV[$k]=$v
    say "ENV $k=$v"
  done
}

do_copy() {
  local from='' a srcs=() dest base rel target n
  while [[ ${1:-} == --* ]]; do
    case "$1" in
      --from=*) from=${1#--from=} ;;
      *) die "COPY $1: this option is not supported here" ;;
    esac
    shift
  done
  [ $# -ge 2 ] || die "COPY $*: needs a source and a destination"
  srcs=("${@:1:$#-1}"); dest=${!#}
  [[ $* == *[\*\?\[]* ]] && die "COPY $*: wildcards are not supported here"
  target=$(in_root "$dest")
  if [ -n "$from" ]; then
    [ -n "${STAGE_ROOT[$from]+x}" ] || die "COPY --from=$from: no such stage"
    base=${STAGE_ROOT[$from]}
  else
    base=$CONTEXT
  fi
  if [ ${#srcs[@]} -gt 1 ] || [[ $dest == */ ]]; then mkdir -p "$target"; fi
  for a in "${srcs[@]}"; do
    rel=${a#/}; rel=${rel#./}; rel=${rel%/}
    [ -e "$base/$rel" ] || die "COPY ${from:+--from=$from }$a: not found in ${from:-the build context} ($base/$rel)"
    if [ -d "$base/$rel" ]; then
      # A directory's contents go into the destination; the context's exclusions apply (not to --from).
      mkdir -p "$target"
      n=$(printf '%s' "$rel" | awk -F/ '{print NF}')
      if [ -n "$from" ]; then
        tar -C "$base" -cf - -- "$rel" | tar -C "$target" -xf - --no-same-owner --strip-components="$n"
      else
        tar -C "$base" -cf - "${EXCLUDES[@]}" -- "$rel" | tar -C "$target" -xf - --no-same-owner --strip-components="$n"
      fi
    elif [ -d "$target" ]; then
      cp "$base/$rel" "$target/"
    else
      mkdir -p "$(dirname "$target")"; cp "$base/$rel" "$target"
    fi
  done
  say "COPY ${from:+--from=$from }${srcs[*]} -> $dest"
}

do_run() {
  local cmd=$1 started elapsed
  # A BuildKit cache mount of npm's cache: this machine's npm cache plays it (it too outlives builds).
  while [[ $cmd == --mount=* ]]; do
    [[ $cmd == --mount=type=cache,target=/root/.npm\ * ]] || die "RUN $cmd: only --mount=type=cache,target=/root/.npm is supported here"
    say "RUN --mount=type=cache,target=/root/.npm: played by this machine's npm cache ($(npm config get cache))"
    cmd=${cmd#--mount=type=cache,target=/root/.npm }
  done
  # Run here, an absolute path would name this machine's files, not the stage's.
  [[ $cmd =~ (^|[[:space:]=:])/ ]] && die "RUN $cmd: an absolute path cannot be performed safely here"
  stage_env
  say "RUN $cmd   (in $ROOT$WD, as $STAGE_USER)"
  started=$(date +%s)
  if [ "$STAGE_USER" = root ]; then
    # As root, as in the image; HOME stays this machine's so that npm uses its cache.
    (cd "$ROOT$WD" && env -i "HOME=$HOME" "${STEP_ENV[@]}" sh -c "$cmd") || die "RUN $cmd: exit code $?"
  else
    (cd "$ROOT$WD" && env -i "HOME=$TMP/home" "${STEP_ENV[@]}" "${AS_USER[@]}" sh -c "$cmd") || die "RUN $cmd: exit code $?"
  fi
  elapsed=$(($(date +%s) - started))
  say "RUN done in ${elapsed}s"
}

# --- read the Dockerfile: join continuation lines, drop comments --------------------------------
LINES=()
pending=''
while IFS= read -r line || [ -n "$line" ]; do
  if [ -z "$pending" ] && [[ $line =~ ^[[:space:]]*(#|$) ]]; then continue; fi
  if [[ $line == *\\ ]]; then pending+="${line%\\} "; continue; fi
  LINES+=("$pending$line"); pending=''
done <"$DOCKERFILE"
[ -z "$pending" ] || LINES+=("$pending")

for line in "${LINES[@]}"; do
  line=$(printf '%s' "$line" | sed 's/^[[:space:]]*//')
  instr=${line%%[[:space:]]*}; rest=${line#"$instr"}; rest=${rest#"${rest%%[![:space:]]*}"}
  instr=${instr^^}
  [ "$instr" = FROM ] || [ -n "$ROOT" ] || die "$instr before FROM"
  case "$instr" in
    FROM) read -r -a w <<<"$rest"; do_from "${w[@]}" ;;
    WORKDIR)
      case "$rest" in /*) WD=${rest%/} ;; *) WD=${WD%/}/$rest ;; esac
      [ -n "$WD" ] || WD=/
      mkdir -p "$ROOT$WD"; say "WORKDIR $WD" ;;
    ENV) read -r -a w <<<"$rest"; do_env "${w[@]}" ;;
    COPY) read -r -a w <<<"$rest"; do_copy "${w[@]}" ;;
    RUN) [[ $rest == \[* ]] && die "RUN $rest: the exec form is not supported here"; do_run "$rest" ;;
    USER) STAGE_USER=$rest; say "USER $rest: later steps and the entrypoint run as $([ "$rest" = root ] && echo root || echo "$RUN_USER (uid $RUN_UID)")" ;;
    EXPOSE) read -r -a EXPOSED <<<"$rest"; say "EXPOSE ${EXPOSED[*]}" ;;
    HEALTHCHECK)
      hc=$rest
      while [[ $hc == --* ]]; do hc=${hc#*[[:space:]]}; hc=${hc#"${hc%%[![:space:]]*}"}; done
      [[ $hc == CMD\ * ]] || die "HEALTHCHECK $rest: expected [OPTIONS] CMD COMMAND"
      HEALTH_CMD=${hc#CMD }
      [[ $HEALTH_CMD == \[* ]] && die "HEALTHCHECK: the exec form is not supported here (use the shell form)"
      say "HEALTHCHECK CMD $HEALTH_CMD" ;;
    ENTRYPOINT|CMD)
      [[ $rest == \[* ]] || die "$instr $rest: only the exec form (a JSON array) is supported here"
      mapfile -d '' words < <(json_words "$rest") || die "$instr $rest: not a JSON array of strings"
      if [ "$instr" = ENTRYPOINT ]; then ENTRYPOINT=("${words[@]}"); else CMD=("${words[@]}"); fi
      say "$instr ${words[*]}" ;;
    *) die "instruction $instr is not supported by this script: teach it, or keep the Dockerfile to what it knows" ;;
  esac
done
[ ${#ENTRYPOINT[@]} -gt 0 ] || die "the final stage has no ENTRYPOINT"
[ -n "$HEALTH_CMD" ] || die "the final stage has no HEALTHCHECK"
[ "$STAGE_USER" != root ] && [ "$STAGE_USER" != 0 ] || die "the final stage runs as root (no USER)"

# --- what the final stage holds -------------------------------------------------------------------
APP=$ROOT$WD
say "image: $APP, $(du -sh "$APP" | cut -f1) ($(du -sh "$APP/node_modules" 2>/dev/null | cut -f1) of it node_modules)"
# Every devDependency of the workspace absent, unless a production dependency needs it too (npm ls says).
mapfile -t DEV_DEPS < <(cd "$APP" && node -e '
  const fs = require("fs");
  const pkgs = ["package.json", ...(JSON.parse(fs.readFileSync("package.json")).workspaces || []).map((w) => w + "/package.json")];
  const dev = new Set(), prod = new Set();
  for (const p of pkgs) { const j = JSON.parse(fs.readFileSync(p)); Object.keys(j.devDependencies || {}).forEach((d) => dev.add(d)); Object.keys(j.dependencies || {}).forEach((d) => prod.add(d)); }
  for (const d of dev) if (!prod.has(d)) console.log(d);')
present=()
for d in "${DEV_DEPS[@]}"; do [ -e "$APP/node_modules/$d" ] && present+=("$d"); done
[ -e "$APP/node_modules/typescript" ] && die "typescript is in the final stage's node_modules: devDependencies were installed"
if [ ${#present[@]} -gt 0 ]; then
  say "check: devDependencies in the final stage's node_modules (needed by production dependencies): ${present[*]}"
else
  say "check: no devDependency in the final stage's node_modules (of ${#DEV_DEPS[@]}: ${DEV_DEPS[*]}): ok"
fi

# --- start the entrypoint as the image's user, as `docker run -e DDP_PORT -e DDP_TOKEN IMAGE ARGS` --
PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { process.stdout.write(String(s.address().port)); s.close(); })')
TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
[ ${#RUN_ARGS[@]} -gt 0 ] || RUN_ARGS=("${CMD[@]}")
stage_env
RUN_ENV=("${STEP_ENV[@]}" "HOME=$TMP/home" "HOSTNAME=$(hostname)" "DDP_PORT=$PORT" "DDP_TOKEN=$TOKEN")
LOG=$TMP/entrypoint.log
say "start: ${ENTRYPOINT[*]} ${RUN_ARGS[*]}   (as $RUN_USER, in $APP, with the image's ENV, DDP_PORT=$PORT and DDP_TOKEN=<random>; output in $LOG)"
(cd "$APP" && exec env -i "${RUN_ENV[@]}" "${AS_USER[@]}" "${ENTRYPOINT[@]}" "${RUN_ARGS[@]}") >"$LOG" 2>&1 &
ENTRY_PID=$!

show_log() { sed 's/^/  | /' "$LOG" >&2; }
# The HEALTHCHECK command, as docker would run it in the container: as the user, with the image's environment.
health() { (cd "$APP" && env -i "${RUN_ENV[@]}" "${AS_USER[@]}" sh -c "$HEALTH_CMD") >/dev/null 2>&1; }
tries=0
until health; do
  tries=$((tries + 1))
  kill -0 "$ENTRY_PID" 2>/dev/null || { show_log; die "the entrypoint exited before its HEALTHCHECK passed"; }
  [ "$tries" -lt 90 ] || { show_log; die "HEALTHCHECK still failing after $tries tries (1 s apart)"; }
  sleep 1
done
say "check: HEALTHCHECK passed (after $tries failed tries, 1 s apart): $HEALTH_CMD"

# The process itself (every wrapper above execs, so the pid is the entrypoint's node).
uid=$(awk '/^Uid:/ {print $2}' "/proc/$ENTRY_PID/status")
euid=$(awk '/^Uid:/ {print $3}' "/proc/$ENTRY_PID/status")
comm=$(cat "/proc/$ENTRY_PID/comm")
[ "$uid" != 0 ] && [ "$euid" != 0 ] || die "the entrypoint runs as root (uid $uid, euid $euid)"
[ "$uid" = "$RUN_UID" ] || die "the entrypoint runs as uid $uid, not the image user's $RUN_UID"
say "check: the entrypoint process $ENTRY_PID ($comm) runs as uid $uid, euid $euid ($RUN_USER), not root: ok"
grep -m1 'listening on' "$LOG" | sed 's/^/  | /' || true
say "all checks passed"
