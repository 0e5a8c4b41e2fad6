#!/usr/bin/env bash
# bench/cache-tests/run.sh: the public HTTP cache test suite (the npm package
# http-cache-tests, whose results cache-tests.fyi shows) against holdfast.
#
# It installs the suite at the version pinned in bench/cache-tests/package.json
# (once, into a cache directory), builds holdfast, starts the suite's origin
# server and holdfast in front of it, both on free loopback ports, runs the
# suite's command-line client through holdfast, and writes the results:
#
#   $OUT/results.json   what the suite's client printed: {test id: true | [kind of error, message]}
#   $OUT/summary.json   every test classified as cache-tests.fyi shows it, the counts and
#                       the list of required failures (see bench/cache-tests/README.md)
#   $OUT/holdfast.yaml, holdfast.log, origin.log, cli.log
#
# and prints "passed N, failed N, required failed N" and the ids of the
# required failures. All traffic stays on 127.0.0.1.
#
# Usage (from anywhere):
#   bash bench/cache-tests/run.sh
#   CACHE=off bash bench/cache-tests/run.sh          # holdfast without its cache: the baseline
#   TEST_ID=freshness-max-age bash bench/cache-tests/run.sh   # one test, requests and responses shown
#
# Environment variables (defaults in brackets):
#   CACHE        [auto] on   = the route caches (cache: and routes[].cache keys);
#                               an error if holdfast rejects those keys
#                       off  = no cache keys: holdfast as a plain reverse proxy
#                       auto = on if `holdfast check` accepts the keys, else off
#   OUT          [bench/cache-tests/results]  where the files above go
#   SUITE_DIR    [${XDG_CACHE_HOME:-$HOME/.cache}/holdfast/http-cache-tests@VERSION]
#                       where the suite is installed; reused when it holds an
#                       install of the same package.json
#   HOLDFAST_BIN []     run this holdfast binary instead of building ./cmd/holdfast
#   TEST_ID      []     run only this test, with the suite's dump of every
#                       request and response (no summary)
#   CLI_TIMEOUT  [300]  seconds the suite's client may run
#
# Exit status: 0 when the suite ran and the required failures are at most the
# number in bench/cache-tests/threshold; 3 when they are more; 2 when the
# suite could not drive some test through holdfast (a harness error: a PUT
# refused, a test without a result); 4 when the suite cannot be installed
# (node or npm missing, npm install failed); 1 on any other error; 130 after
# Ctrl-C. Every process the script starts is stopped on exit by the PID it
# recorded, and its temporary directory is removed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

# The pinned version is the one in package.json; INTEGRITY is the registry's
# sha512 of that version's tarball, checked after every install. Change both
# together (README.md, "Moving to another version").
VERSION=$(sed -n 's/^ *"http-cache-tests": *"\([^"]*\)".*/\1/p' "$SCRIPT_DIR/package.json" | head -n 1)
INTEGRITY="sha512-DjuwN9nUZXLTW+wav1LRESCZNVxl8SshwOy4z1pxuWbWt5/ay6sM9QQ1lebBaDO6P1IMBoK6mdf+PuVP/QNL8A=="

CACHE=${CACHE:-auto}
OUT=${OUT:-$SCRIPT_DIR/results}
SUITE_DIR=${SUITE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/holdfast/http-cache-tests@$VERSION}
HOLDFAST_BIN=${HOLDFAST_BIN:-}
TEST_ID=${TEST_ID:-}
CLI_TIMEOUT=${CLI_TIMEOUT:-300}

log() { printf '[cache-tests] %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
# unavailable: the suite cannot be had here (exit 4, which the Go test may skip on).
unavailable() {
	log "UNAVAILABLE: $*"
	exit 4
}

[[ -n $VERSION ]] || die "no http-cache-tests version in $SCRIPT_DIR/package.json"
case $CACHE in on | off | auto) ;; *) die "CACHE=$CACHE: want on, off or auto" ;; esac
[[ $CLI_TIMEOUT =~ ^[0-9]+$ ]] || die "CLI_TIMEOUT=$CLI_TIMEOUT: want seconds"
[[ $OUT == /* ]] || OUT="$PWD/$OUT"
[[ $SUITE_DIR == /* ]] || SUITE_DIR="$PWD/$SUITE_DIR"
if [[ -n $HOLDFAST_BIN && $HOLDFAST_BIN != /* ]]; then HOLDFAST_BIN="$PWD/$HOLDFAST_BIN"; fi

command -v node >/dev/null 2>&1 || unavailable "node is not installed (apt-get install nodejs)"
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) is not installed"
if [[ -z $HOLDFAST_BIN ]]; then command -v go >/dev/null 2>&1 || die "go is not installed, and no HOLDFAST_BIN"; fi

# ---- processes, and stopping them ----
PIDS=()
NAMES=()
WORK=""
STAGING=""
CLEANED=0

# proc_alive PID: running and not a zombie.
proc_alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z ]]
}

stop_pid() { # pid name
	local pid=$1 name=$2 i
	proc_alive "$pid" || {
		wait "$pid" 2>/dev/null || true
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		proc_alive "$pid" || break
		sleep 0.1
	done
	if proc_alive "$pid"; then
		log "$name (pid $pid) still running 5s after SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	((CLEANED == 0)) || return 0
	CLEANED=1
	set +e
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${PIDS[i]}" "${NAMES[i]}"
	done
	if [[ -n $WORK && -d $WORK ]]; then rm -rf -- "$WORK"; fi
	if [[ -n $STAGING && -d $STAGING ]]; then rm -rf -- "$STAGING"; fi
}
trap cleanup EXIT
trap 'log "interrupted: stopping everything"; exit 130' INT
trap 'log "terminated: stopping everything"; exit 143' TERM

# started NAME PID: records a process to stop at exit.
started() {
	NAMES+=("$1")
	PIDS+=("$2")
}

# ---- the suite, installed once per package.json ----
PKG="$SUITE_DIR/node_modules/http-cache-tests"

suite_installed() {
	[[ -f $SUITE_DIR/.installed && -f $PKG/cli.mjs ]] &&
		cmp -s "$SCRIPT_DIR/package.json" "$SUITE_DIR/package.json"
}

install_suite() {
	if suite_installed; then
		log "http-cache-tests $VERSION: installed in $SUITE_DIR"
		return 0
	fi
	command -v npm >/dev/null 2>&1 || unavailable "npm is not installed, and the suite is not in $SUITE_DIR yet"
	local parent
	parent=$(dirname "$SUITE_DIR")
	mkdir -p "$parent"
	STAGING=$(mktemp -d "$parent/.http-cache-tests.XXXXXX")
	cp "$SCRIPT_DIR/package.json" "$STAGING/package.json"
	log "installing http-cache-tests $VERSION with npm into $SUITE_DIR"
	if ! (cd "$STAGING" && npm install --no-audit --no-fund --ignore-scripts --omit=dev --loglevel=error >&2); then
		unavailable "npm install of http-cache-tests $VERSION failed"
	fi
	local got
	got=$(node -e '
		const lock = require(process.argv[1] + "/package-lock.json")
		const p = lock.packages && lock.packages["node_modules/http-cache-tests"]
		console.log(p ? p.version + " " + p.integrity : "")' "$STAGING") || got=""
	[[ $got == "$VERSION $INTEGRITY" ]] ||
		die "npm installed http-cache-tests as \"$got\", not \"$VERSION $INTEGRITY\": update INTEGRITY in run.sh with the version"
	touch "$STAGING/.installed"
	if [[ -e $SUITE_DIR ]]; then
		# Only ever replace an earlier install made by this script.
		if ! grep -q '"name": "holdfast-cache-tests"' "$SUITE_DIR/package.json" 2>/dev/null; then
			die "$SUITE_DIR exists and is not an install made by this script: remove it or set SUITE_DIR"
		fi
		rm -rf -- "$SUITE_DIR"
	fi
	if mv -T "$STAGING" "$SUITE_DIR" 2>/dev/null; then
		STAGING=""
	elif suite_installed; then
		log "another run installed it first: using that one"
	else
		die "could not move the install into $SUITE_DIR"
	fi
}

# ---- holdfast's configuration ----
# write_config FILE ORIGIN_PORT CACHE(on|off)
write_config() {
	local file=$1 port=$2 cache=$3
	{
		echo "# written by bench/cache-tests/run.sh (CACHE=$cache)"
		echo 'listen: [{addr: "127.0.0.1:0"}]'
		echo 'access_log: {path: "off"}'
		if [[ $cache == on ]]; then echo 'cache: {max_size: 64MiB, max_object: 8MiB}'; fi
		echo 'routes:'
		echo '  - upstream: origin'
		if [[ $cache == on ]]; then echo '    cache: {enabled: true}'; fi
		echo 'upstreams:'
		echo '  origin:'
		echo '    retry: {tries: 1}'
		echo "    servers: [{url: \"http://127.0.0.1:$port\"}]"
	} >"$file"
}

# wait_for_line FILE REGEX PID NAME: the first line of FILE matching REGEX,
# within 15 s, while PID runs.
wait_for_line() {
	local file=$1 re=$2 pid=$3 name=$4 i line
	for ((i = 0; i < 150; i++)); do
		line=$(grep -m 1 -E "$re" "$file" 2>/dev/null || true)
		if [[ -n $line ]]; then
			printf '%s\n' "$line"
			return 0
		fi
		if ! proc_alive "$pid"; then
			log "$name exited; its output ($file):"
			tail -n 20 "$file" >&2 || true
			return 1
		fi
		sleep 0.1
	done
	log "$name did not start within 15 s; its output ($file):"
	tail -n 20 "$file" >&2 || true
	return 1
}

# ---- the run ----
START=$SECONDS
mkdir -p "$OUT"
rm -f "$OUT/results.json" "$OUT/summary.json"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/holdfast-cache-tests.XXXXXX")

install_suite

if [[ -n $HOLDFAST_BIN ]]; then
	[[ -x $HOLDFAST_BIN ]] || die "HOLDFAST_BIN=$HOLDFAST_BIN is not an executable"
	HF=$HOLDFAST_BIN
else
	log "building holdfast"
	(cd "$ROOT" && go build -o "$WORK/holdfast" ./cmd/holdfast) || die "go build ./cmd/holdfast failed"
	HF=$WORK/holdfast
fi

# The suite's origin server. `npm run server --port=N` would run
# `node server/server.mjs &` with npm_config_port=N and exit at once, leaving
# no PID to stop, so node is started here directly with the variables npm
# would set. Port 0: the kernel picks a free one, which the server prints.
# Its pidfile goes to the temporary directory, not into the shared install.
(
	cd "$PKG"
	exec env npm_config_protocol=http npm_config_port=0 npm_config_pidfile="$WORK/origin.pid" \
		node --require "$SCRIPT_DIR/loopback.cjs" server/server.mjs
) >"$OUT/origin.log" 2>&1 &
started origin $!
line=$(wait_for_line "$OUT/origin.log" '^Listening on http://' "${PIDS[-1]}" "the suite's origin server") || exit 1
ORIGIN_PORT=$(sed -n 's|^Listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' <<<"$line")
[[ -n $ORIGIN_PORT ]] || die "the origin server listens elsewhere than on 127.0.0.1: $line"
log "origin: http://127.0.0.1:$ORIGIN_PORT (pid ${PIDS[-1]})"

mode=$CACHE
if [[ $mode != off ]]; then
	write_config "$OUT/holdfast.yaml" "$ORIGIN_PORT" on
	if ! "$HF" check -c "$OUT/holdfast.yaml" >"$WORK/check.out" 2>&1; then
		[[ $mode == auto ]] || die "holdfast rejects the cache keys (CACHE=on): $(cat "$WORK/check.out")"
		log "holdfast rejects the cache keys, so this runs without them (the uncached baseline):"
		sed 's/^/    /' "$WORK/check.out" | head -n 5 >&2
		mode=off
	else
		mode=on
	fi
fi
if [[ $mode == off ]]; then
	write_config "$OUT/holdfast.yaml" "$ORIGIN_PORT" off
	"$HF" check -c "$OUT/holdfast.yaml" >"$WORK/check.out" 2>&1 ||
		die "holdfast rejects $OUT/holdfast.yaml: $(cat "$WORK/check.out")"
fi
log "holdfast configuration: CACHE=$mode ($OUT/holdfast.yaml)"

"$HF" serve -c "$OUT/holdfast.yaml" >"$OUT/holdfast.log" 2>&1 &
started holdfast $!
# The startup line carries the addresses actually bound (port 0 resolved).
line=$(wait_for_line "$OUT/holdfast.log" '"msg":"holdfast serving"' "${PIDS[-1]}" holdfast) || exit 1
PROXY_ADDR=$(sed -n 's/.*"listen":\["\(127\.0\.0\.1:[0-9]*\)".*/\1/p' <<<"$line")
[[ -n $PROXY_ADDR ]] || die "cannot read holdfast's listen address from: $line"
BASE="http://$PROXY_ADDR"
log "holdfast: $BASE (pid ${PIDS[-1]})"

# One request through holdfast to the origin before the suite starts: the
# origin answers 404 "State not found" for a state it never stored.
probe=$(timeout 10 node -e '
	require("http").get(process.argv[1], res => {
		let body = ""
		res.on("data", c => { body += c })
		res.on("end", () => { console.log(res.statusCode + " " + body.trim()); process.exit(0) })
	}).on("error", e => { console.log("error " + e.message); process.exit(1) })' "$BASE/state/holdfast-ready") || true
[[ $probe == "404 State not found"* ]] || die "holdfast does not pass requests to the origin: GET /state/holdfast-ready gave: ${probe:-nothing}"

# The suite's client. `npm run --silent cli --base=URL` sets npm_config_base
# and runs `node --no-warnings cli.mjs`; the same is done directly. The base
# URL must not end in "/": the client appends "/test/UUID" and "/config/UUID"
# to it. cli.mjs needs the id variable set ("" = every test): left unset it
# takes the one-test path and fails.
#
# start_cli STDOUT STDERR: the client in the background, its PID recorded
# (the subshell execs timeout, which passes a SIGTERM on to node).
start_cli() {
	(
		cd "$PKG"
		exec timeout -k 5 "$CLI_TIMEOUT" env npm_config_base="$BASE" npm_package_config_base="$BASE" \
			npm_config_id="$TEST_ID" npm_package_config_id="$TEST_ID" node --no-warnings cli.mjs
	) >"$1" 2>"$2" &
	started client $!
}

if [[ -n $TEST_ID ]]; then
	log "running test $TEST_ID through holdfast"
	start_cli "$OUT/test-$TEST_ID.txt" "$OUT/cli.log"
	rc=0
	wait "${PIDS[-1]}" || rc=$?
	cat "$OUT/test-$TEST_ID.txt" "$OUT/cli.log"
	log "kept in $OUT/test-$TEST_ID.txt; the origin's side in $OUT/origin.log"
	exit "$rc"
fi

log "running http-cache-tests $VERSION through holdfast (at most ${CLI_TIMEOUT}s)"
cli_start=$SECONDS
start_cli "$OUT/results.json" "$OUT/cli.log"
rc=0
wait "${PIDS[-1]}" || rc=$?
if ((rc == 124 || rc == 137)); then die "the suite's client did not finish within ${CLI_TIMEOUT}s (CLI_TIMEOUT)"; fi
((rc == 0)) || die "the suite's client exited with status $rc: $(tail -n 5 "$OUT/cli.log")"
# The client prints errors and still exits 0: no JSON on stdout is a failure.
[[ -s $OUT/results.json ]] || die "the suite's client printed no results: $(tail -n 5 "$OUT/cli.log")"
log "the suite's client took $((SECONDS - cli_start))s"

threshold=$(tr -d ' \t\r\n' <"$SCRIPT_DIR/threshold" 2>/dev/null || true)
[[ $threshold =~ ^[0-9]+$ ]] || die "$SCRIPT_DIR/threshold holds no number"

rc=0
node "$SCRIPT_DIR/summary.mjs" "$PKG" "$OUT/results.json" "$OUT/summary.json" "$threshold" "$mode" || rc=$?
case $rc in
0) ;;
2) exit 2 ;;
*) die "summary.mjs failed (status $rc)" ;;
esac
log "results: $OUT/results.json, summary: $OUT/summary.json (CACHE=$mode, $((SECONDS - START))s in all)"

required_failed=$(node -p 'require(process.argv[1]).counts.required_failed' "$OUT/summary.json")
if ((required_failed > threshold)); then
	log "required failures: $required_failed, more than the $threshold in bench/cache-tests/threshold"
	exit 3
fi
