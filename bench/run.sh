#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions reached through "start_$t" and traps
# bench/run.sh: holdfast side by side with nginx, haproxy and caddy.
#
# Every proxy runs on its own loopback port in front of the same two backends
# (bench/backend, round robin, keep-alive to the upstreams everywhere), and
# wrk loads each target in interleaved rounds. The report (a Markdown table:
# median req/s, p50, p99, CPU time per request, max RSS, new upstream
# connections and the ratios to nginx and to direct) goes to stdout, and also
# to $OUT when set; progress and errors go to stderr.
# See bench/README.md for how to read it.
#
# Usage (from anywhere; needs root, or the tools below already installed):
#   bash bench/run.sh
#   ROUNDS=2 DURATION=3s TARGETS="direct nginx haproxy caddy" bash bench/run.sh
#   # what holdfast's request metrics cost: the same holdfast with and without
#   TARGETS="nginx holdfast holdfast-nometrics" bash bench/run.sh
#   # what holdfast's access log costs: the same holdfast with and without
#   TARGETS="nginx holdfast holdfast-log" bash bench/run.sh
#
# Environment variables (defaults in brackets):
#   ROUNDS    [3]     interleaved rounds; each round runs every target once,
#                     in an order rotated by one target per round
#   DURATION  [10s]   length of each measured wrk run (wrk's -d syntax)
#   WARMUP    [2s]    wrk run per target, before round 1, not measured; 0 = none
#   CONNS     [64]    wrk connections (-c)
#   THREADS   [2]     wrk threads (-t)
#   SIZE      [1024]  response body size of the backends, in bytes
#   TARGETS   ["direct nginx haproxy caddy holdfast"]
#                     what to measure; direct = wrk straight to one backend;
#                     not in the default:
#                     holdfast-nometrics = the holdfast target's
#                       configuration, built with -tags nometrics (no
#                       request metrics), to compare with holdfast
#                     holdfast-log = the holdfast target's configuration
#                       and binary with its access log written to a file,
#                       to compare with holdfast
#                     loopfloor = bench/loopfloor, not a proxy: the
#                       smallest forwarder an event loop in Go can be,
#                       one thread (compare it under PIN=proxy)
#   PIN       [split] CPU pinning with taskset:
#                       split = wrk on the last CPU, backends and proxies on
#                               the other CPUs (nginx worker_processes and
#                               haproxy nbthread = that many CPUs)
#                       proxy = the proxy alone on the first CPU, wrk and
#                               the backends on the last (worker_processes
#                               and nbthread 1); direct is then a backend
#                               of its own alone on the first CPU
#                       wrk   = wrk on the last CPU, the servers unpinned
#                       none  = nothing pinned
#                     (see bench/README.md for why split is the default)
#   ACCESS_LOG [0]    1 = every proxy writes an access log line per request
#                     to a file in the work dir (haproxy: to its standard
#                     output, which is such a file)
#   ACCESS_LOG_BUFFER [0]
#                     KiB of access-log lines nginx and holdfast collect
#                     before writing them together (nginx buffer=, holdfast
#                     access_log.buffer; both flush within 1s); 0 = one
#                     write per line
#   UPSTREAM_IDLE [60s] how long every proxy keeps an idle upstream
#                     connection (nginx keepalive_timeout, haproxy
#                     pool-purge-delay, caddy keepalive, holdfast
#                     timeouts.idle); "default" = each proxy's own default
#   WAKERS    [0]     client connections besides wrk's during every measured
#                     run, each making a request again every WAKE_EVERY
#                     (bench/idleconns -every): clients that come back after
#                     a pause, so that a proxy which parks idle connections
#                     (holdfast after 1 s) parks and wakes them all along;
#                     their requests are not in req/s, their CPU is in CPU
#                     µs/req, their failures are in errors
#   WAKE_EVERY [1.2s] the pause of WAKERS, ±25% at random
#   PROFILE_DIR []    when set, each holdfast target runs with
#                     HOLDFAST_CPUPROFILE=$PROFILE_DIR/TARGET.pprof
#                     (holdfast.pprof for holdfast) and is stopped with
#                     SIGTERM after the last round, so that it writes it
#   PAUSE     [1]     seconds of idle between two runs
#   OTHER_LIMIT [10]  warn when processes the script did not start used more
#                     than this % of the machine's CPU during a run
#   BUSY_RETRIES [2]  a run so disturbed is repeated up to this many times;
#                     the least disturbed attempt is kept
#   OUT       []      also write the Markdown report to this file
#   INSTALL   [1]     0 = never run apt-get; fail if a tool is missing
#   HOLDFAST_BIN []   use this holdfast binary instead of building
#                     ./cmd/holdfast from the tree (holdfast, holdfast-log)
#   HOLDFAST_BASE_BIN []
#                     the holdfast binary of the holdfast-base target: an
#                     earlier build to compare with, in the same rounds
#                     (required when TARGETS has holdfast-base)
#   HOLDFAST_NOMETRICS_BIN []
#                     the same for holdfast-nometrics, instead of building
#                     ./cmd/holdfast with -tags nometrics
#
# Exit status: 0 when every requested target was measured, 1 when one was
# skipped (failed to build or start, or a wrk run failed) or on a fatal error,
# 130 on Ctrl-C. Every process the script starts is stopped on exit, by the PID
# it recorded, and the temporary work dir is removed.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SIZE=${SIZE:-1024}
TARGETS=${TARGETS:-"direct nginx haproxy caddy holdfast"}
PIN=${PIN:-split}
ACCESS_LOG=${ACCESS_LOG:-0}
ACCESS_LOG_BUFFER=${ACCESS_LOG_BUFFER:-0}
UPSTREAM_IDLE=${UPSTREAM_IDLE:-60s}
PROFILE_DIR=${PROFILE_DIR:-}
WAKERS=${WAKERS:-0}
WAKE_EVERY=${WAKE_EVERY:-1.2s}
PAUSE=${PAUSE:-1}
OTHER_LIMIT=${OTHER_LIMIT:-10}
BUSY_RETRIES=${BUSY_RETRIES:-2}
OUT=${OUT:-}
INSTALL=${INSTALL:-1}
HOLDFAST_BIN=${HOLDFAST_BIN:-}
HOLDFAST_NOMETRICS_BIN=${HOLDFAST_NOMETRICS_BIN:-}
HOLDFAST_BASE_BIN=${HOLDFAST_BASE_BIN:-}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
if [[ -n $OUT && $OUT != /* ]]; then OUT="$PWD/$OUT"; fi
if [[ -n $PROFILE_DIR && $PROFILE_DIR != /* ]]; then PROFILE_DIR="$PWD/$PROFILE_DIR"; fi
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

# ---------------------------------------------------------------- arguments

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "CONNS must be a positive integer, got '$CONNS'"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$THREADS'"
((CONNS >= THREADS)) || die "CONNS ($CONNS) must be >= THREADS ($THREADS) for wrk"
[[ $SIZE =~ ^[0-9]+$ ]] || die "SIZE must be a byte count, got '$SIZE'"
[[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || die "DURATION must look like 10s, 1m or 30, got '$DURATION'"
[[ $WARMUP == 0 || $WARMUP =~ ^[1-9][0-9]*[smh]?$ ]] || die "WARMUP must look like 2s or be 0, got '$WARMUP'"
[[ $PAUSE =~ ^[0-9]+$ ]] || die "PAUSE must be whole seconds, got '$PAUSE'"
[[ $BUSY_RETRIES =~ ^[0-9]+$ ]] || die "BUSY_RETRIES must be a whole number, got '$BUSY_RETRIES'"
[[ $OTHER_LIMIT =~ ^[0-9]+$ ]] || die "OTHER_LIMIT must be a whole percentage, got '$OTHER_LIMIT'"
[[ $ACCESS_LOG == 0 || $ACCESS_LOG == 1 ]] || die "ACCESS_LOG must be 0 or 1, got '$ACCESS_LOG'"
[[ $ACCESS_LOG_BUFFER =~ ^[0-9]+$ ]] || die "ACCESS_LOG_BUFFER must be a number of KiB, got '$ACCESS_LOG_BUFFER'"
[[ $UPSTREAM_IDLE == default || $UPSTREAM_IDLE =~ ^[1-9][0-9]*s$ ]] ||
	die "UPSTREAM_IDLE must be whole seconds like 60s, or default, got '$UPSTREAM_IDLE'"
case $PIN in none | wrk | split | proxy) ;; *) die "PIN must be none, wrk, split or proxy, got '$PIN'" ;; esac
[[ $WAKERS =~ ^[0-9]+$ ]] || die "WAKERS must be a number of connections, got '$WAKERS'"
[[ $WAKE_EVERY =~ ^[0-9]+(\.[0-9]+)?(ms|s)$ && $WAKE_EVERY =~ [1-9] ]] || die "WAKE_EVERY must look like 1.2s or 800ms (not 0), got '$WAKE_EVERY'"

KNOWN="direct nginx haproxy caddy holdfast holdfast-nometrics holdfast-log holdfast-base loopfloor"
PROXIES="nginx haproxy caddy holdfast holdfast-nometrics holdfast-log holdfast-base loopfloor"
WANT=()
for t in $TARGETS; do
	[[ " $KNOWN " == *" $t "* ]] || die "unknown target '$t' in TARGETS (known: $KNOWN)"
	[[ " ${WANT[*]-} " == *" $t "* ]] || WANT+=("$t")
done
((${#WANT[@]} > 0)) || die "TARGETS is empty"
wants() { [[ " ${WANT[*]} " == *" $1 "* ]]; }
drop_target() { # name
	local t keep=()
	for t in "${WANT[@]}"; do [[ $t == "$1" ]] || keep+=("$t"); done
	WANT=("${keep[@]}")
}

NOTES=()   # shown under the table
SKIPPED=() # targets that were requested but not measured: "name: reason"
SKIP_FAILURES=0
skip_target() { # name reason [failure=1]: a failure makes the exit status 1
	log "SKIPPING $1: $2"
	SKIPPED+=("$1: $2")
	drop_target "$1"
	if [[ ${3:-1} == 1 ]]; then SKIP_FAILURES=$((SKIP_FAILURES + 1)); fi
}

bench_traps

# ---------------------------------------------------------------- install

need_cmds=(wrk curl)
for t in nginx haproxy caddy; do wants "$t" && need_cmds+=("$t"); done
command -v go >/dev/null || die "go is needed to build the backend and holdfast"

install_cmds "${need_cmds[@]}"
for c in "${UNAVAILABLE[@]}"; do
	case $c in
	wrk | curl) die "${PKG_OF[$c]} is not in this machine's Debian repositories: cannot run" ;;
	*) skip_target "$c" "package '${PKG_OF[$c]}' is not in this machine's Debian repositories: running without $c" 0 ;;
	esac
done
for c in "${need_cmds[@]}"; do
	if wants "$c" || [[ $c == wrk || $c == curl ]]; then
		have_cmd "$c" || die "$c still not found after install"
	fi
done
((${#WANT[@]} > 0)) || die "nothing left to measure"

# ---------------------------------------------------------------- CPUs

NPROC=$(nproc)
cpu_list
WRK_PIN=()     # wrk
BACKEND_PIN=() # the two backends
PROXY_PIN=()   # the proxies
DIRECT_PIN=()  # the backend of the direct target, under PIN=proxy only
if ((${#CPUS[@]} < 2)) && [[ $PIN != none ]]; then
	log "only one CPU: PIN=$PIN ignored"
	PIN=none
fi
if [[ $PIN != none ]]; then
	first=${CPUS[0]}
	last=${CPUS[${#CPUS[@]} - 1]}
	WRK_PIN=(taskset -c "$last")
	case $PIN in
	split)
		rest=$(
			IFS=,
			echo "${CPUS[*]:0:${#CPUS[@]}-1}"
		)
		PROXY_PIN=(taskset -c "$rest")
		BACKEND_PIN=(taskset -c "$rest")
		;;
	proxy)
		PROXY_PIN=(taskset -c "$first")
		BACKEND_PIN=(taskset -c "$last")
		DIRECT_PIN=(taskset -c "$first")
		;;
	esac
fi
case $PIN in
split) PIN_DESC="wrk: ${WRK_PIN[*]}, backends and proxies: ${PROXY_PIN[*]}" ;;
proxy) PIN_DESC="proxy under test: ${PROXY_PIN[*]}, wrk and backends: ${WRK_PIN[*]}; direct: a backend of its own on ${DIRECT_PIN[*]}" ;;
wrk) PIN_DESC="wrk: ${WRK_PIN[*]}, servers unpinned" ;;
none) PIN_DESC="nothing pinned" ;;
esac
# SERVER_NPROC: the CPUs the proxies may use, as `nproc` counts them under
# their affinity. nginx's worker_processes and haproxy's nbthread follow it,
# as Go's GOMAXPROCS (caddy, holdfast, the backends) does by itself.
SERVER_NPROC=$("${PROXY_PIN[@]}" nproc)

# ---------------------------------------------------------------- build

WORK=$(mktemp -d "${TMPDIR:-/tmp}/holdfast-bench.XXXXXX")
mkdir -p "$WORK/logs" "$WORK/results"
log "work dir $WORK"

log "building backend"
build_go "$WORK/backend" ./bench/backend || die "building bench/backend failed"
if ((WAKERS > 0)); then
	log "building idleconns (WAKERS)"
	build_go "$WORK/idleconns" ./bench/idleconns || die "building bench/idleconns failed"
	mkfifo "$WORK/wakers-hold"
fi
if (wants holdfast || wants holdfast-log) && [[ -n $HOLDFAST_BIN ]]; then
	[[ -x $HOLDFAST_BIN ]] || die "HOLDFAST_BIN=$HOLDFAST_BIN is not an executable file"
	log "using holdfast binary $HOLDFAST_BIN (not building)"
	cp "$HOLDFAST_BIN" "$WORK/holdfast"
elif wants holdfast || wants holdfast-log; then
	log "building holdfast"
	if ! build_go "$WORK/holdfast" ./cmd/holdfast; then
		for t in holdfast holdfast-log; do
			wants "$t" && skip_target "$t" "go build ./cmd/holdfast failed (build log shown on stderr)"
		done
	fi
fi
if wants holdfast-nometrics && [[ -n $HOLDFAST_NOMETRICS_BIN ]]; then
	[[ -x $HOLDFAST_NOMETRICS_BIN ]] || die "HOLDFAST_NOMETRICS_BIN=$HOLDFAST_NOMETRICS_BIN is not an executable file"
	log "using holdfast-nometrics binary $HOLDFAST_NOMETRICS_BIN (not building)"
	cp "$HOLDFAST_NOMETRICS_BIN" "$WORK/holdfast-nometrics"
elif wants holdfast-nometrics; then
	log "building holdfast-nometrics (-tags nometrics)"
	if ! build_go "$WORK/holdfast-nometrics" ./cmd/holdfast -tags nometrics; then
		skip_target holdfast-nometrics "go build -tags nometrics ./cmd/holdfast failed (build log shown on stderr)"
	fi
fi
if wants loopfloor; then
	log "building loopfloor"
	build_go "$WORK/loopfloor" ./bench/loopfloor || skip_target loopfloor "go build ./bench/loopfloor failed (build log shown on stderr)"
fi
if wants holdfast-base; then
	[[ -x $HOLDFAST_BASE_BIN ]] || die "TARGETS has holdfast-base: HOLDFAST_BASE_BIN must name an executable holdfast binary (got '$HOLDFAST_BASE_BIN')"
	cp "$HOLDFAST_BASE_BIN" "$WORK/holdfast-base"
fi
if [[ -n $PROFILE_DIR ]]; then
	mkdir -p "$PROFILE_DIR" || die "cannot create PROFILE_DIR $PROFILE_DIR"
fi

# ---------------------------------------------------------------- ports

# two backends and their counters, a third under PIN=proxy for direct, and
# one port per proxy
nbackends=2
[[ $PIN == proxy ]] && wants direct && nbackends=3
nports=$((2 * nbackends))
for t in $PROXIES; do wants "$t" && nports=$((nports + 1)); done
mapfile -t PORTS < <("$WORK/backend" -freeports "$nports")
((${#PORTS[@]} == nports)) || die "could not get $nports free ports from the kernel"
B1=${PORTS[0]}
B2=${PORTS[1]}
STATS_PORTS=("${PORTS[@]:nbackends:nbackends}")
declare -A PORT_OF=([direct]=$B1)
declare -A PID_OF=()
i=$((2 * nbackends))
for t in $PROXIES; do
	if wants "$t"; then
		PORT_OF[$t]=${PORTS[i]}
		i=$((i + 1))
	fi
done

# ---------------------------------------------------------------- backends

START_PIN=("${BACKEND_PIN[@]}")
for n in 1 2; do
	start_backend "backend$n" "${PORTS[n - 1]}" "${STATS_PORTS[n - 1]}" "$SIZE"
	[[ $n == 1 ]] && PID_OF[direct]=$LAST_PID
done
log "backends on 127.0.0.1:$B1 and 127.0.0.1:$B2 (body $SIZE bytes)"
if ((nbackends == 3)); then
	PORT_OF[direct]=${PORTS[2]}
	START_PIN=("${DIRECT_PIN[@]}")
	start_backend backend-direct "${PORTS[2]}" "${STATS_PORTS[2]}" "$SIZE"
	PID_OF[direct]=$LAST_PID
	log "direct: its own backend on 127.0.0.1:${PORTS[2]}, pinned like the proxies"
fi

# ---------------------------------------------------------------- proxies

START_PIN=("${PROXY_PIN[@]}")

# access_log_file TARGET: where TARGET writes its access log
access_log_file() { echo "$WORK/logs/access-$1.log"; }

start_nginx() {
	local d="$WORK/nginx" port=${PORT_OF[nginx]} user="" alog="access_log off;" idle=""
	mkdir -p "$d/tmp"
	# As root nginx would switch its workers to "nobody", who cannot enter
	# the private work dir: keep them as the current user instead.
	((EUID == 0)) && user="user root;"
	if ((ACCESS_LOG == 1)); then
		alog="access_log $(access_log_file nginx);"
		((ACCESS_LOG_BUFFER == 0)) || alog="access_log $(access_log_file nginx) combined buffer=${ACCESS_LOG_BUFFER}k flush=1s;"
	fi
	[[ $UPSTREAM_IDLE == default ]] || idle="keepalive_timeout $UPSTREAM_IDLE;"
	cat >"$d/nginx.conf" <<EOF
$user
worker_processes $SERVER_NPROC;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
http {
    $alog
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream bench {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 512;
        keepalive_requests 1000000;
        $idle
    }
    server {
        listen 127.0.0.1:$port;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
	start_proc nginx "$WORK/logs/nginx.log" \
		nginx -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" -g "daemon off; pid $d/nginx.pid;"
}

start_haproxy() {
	local d="$WORK/haproxy" port=${PORT_OF[haproxy]} glog="" dlog="" pool="pool-max-conn 512"
	mkdir -p "$d"
	# haproxy logs only to syslog-style targets; "stdout" is one of them
	# (non-blocking writes; a regular file never blocks), and haproxy's
	# standard output is redirected to the access log file below.
	if ((ACCESS_LOG == 1)); then
		glog="log stdout format raw local0 info"
		dlog=$'log global\n    option httplog'
	fi
	[[ $UPSTREAM_IDLE == default ]] || pool="$pool pool-purge-delay $UPSTREAM_IDLE"
	cat >"$d/haproxy.cfg" <<EOF
global
    nbthread $SERVER_NPROC
    # no maxconn: haproxy derives it from the open-files limit
    $glog

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
    $dlog

frontend fe
    bind 127.0.0.1:$port
    default_backend be

backend be
    balance roundrobin
    default-server $pool
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
EOF
	haproxy -c -f "$d/haproxy.cfg" >"$WORK/logs/haproxy-check.log" 2>&1 || {
		show_log "$WORK/logs/haproxy-check.log"
		return 1
	}
	# -db: foreground, no master-worker: one process whose PID we hold.
	if ((ACCESS_LOG == 1)); then
		# sh execs haproxy in place (same PID) with stdout on the file
		# shellcheck disable=SC2016 # $0 and $@ are sh's, not ours
		start_proc haproxy "$WORK/logs/haproxy.log" \
			sh -c 'exec "$@" >"$0"' "$(access_log_file haproxy)" haproxy -db -f "$d/haproxy.cfg"
	else
		start_proc haproxy "$WORK/logs/haproxy.log" haproxy -db -f "$d/haproxy.cfg"
	fi
}

start_caddy() {
	local d="$WORK/caddy" port=${PORT_OF[caddy]} alog="" idle="keepalive 2m"
	mkdir -p "$d/config" "$d/data"
	if ((ACCESS_LOG == 1)); then
		alog="log {
        output file $(access_log_file caddy) {
            roll_disabled
        }
    }"
	fi
	[[ $UPSTREAM_IDLE == default ]] || idle="keepalive $UPSTREAM_IDLE"
	cat >"$d/Caddyfile" <<EOF
{
    admin off
    auto_https off
    log {
        output stderr
        level ERROR
    }
}

http://127.0.0.1:$port {
    $alog
    reverse_proxy 127.0.0.1:$B1 127.0.0.1:$B2 {
        lb_policy round_robin
        transport http {
            $idle
            keepalive_idle_conns 1024
            keepalive_idle_conns_per_host 512
        }
    }
}
EOF
	# HOME and XDG_* inside the work dir: caddy keeps its state there.
	start_proc caddy "$WORK/logs/caddy.log" \
		env HOME="$d" XDG_CONFIG_HOME="$d/config" XDG_DATA_HOME="$d/data" \
		caddy run --config "$d/Caddyfile" --adapter caddyfile
}

# run_holdfast TARGET BINARY LOG: BINARY with the one configuration all
# holdfast targets share, on TARGET's port; LOG is access_log.path.
run_holdfast() {
	local t=$1 d="$WORK/$1.d" port=${PORT_OF[$1]} alog=$3 timeouts="" env=()
	mkdir -p "$d"
	[[ $UPSTREAM_IDLE == default ]] || timeouts="timeouts: {idle: $UPSTREAM_IDLE}"
	cat >"$d/holdfast.yaml" <<EOF
listen:
  - addr: "127.0.0.1:$port"
access_log: {path: "$alog", buffer: $((ACCESS_LOG_BUFFER * 1024)), flush: 1s}
routes:
  - match: {path_prefix: /}
    upstream: bench
upstreams:
  bench:
    balance: round_robin
    health: {path: /, interval: 2s}
    $timeouts
    servers:
      - {url: "http://127.0.0.1:$B1"}
      - {url: "http://127.0.0.1:$B2"}
EOF
	if [[ -n $PROFILE_DIR ]]; then
		# a stale file would look like this run's profile
		rm -f -- "$PROFILE_DIR/$t.pprof"
		env=(env "HOLDFAST_CPUPROFILE=$PROFILE_DIR/$t.pprof")
	fi
	# up to 30 s after SIGTERM: time to finish writing the profile
	local STOP_WAIT=30
	start_proc "$t" "$WORK/logs/$t.log" "${env[@]}" "$2" serve -c "$d/holdfast.yaml"
}
holdfast_log_path() { # TARGET
	if ((ACCESS_LOG == 1)) || [[ $1 == holdfast-log ]]; then access_log_file "$1"; else echo off; fi
}
start_holdfast() { run_holdfast holdfast "$WORK/holdfast" "$(holdfast_log_path holdfast)"; }
start_holdfast_nometrics() { run_holdfast holdfast-nometrics "$WORK/holdfast-nometrics" "$(holdfast_log_path holdfast-nometrics)"; }
start_holdfast_log() { run_holdfast holdfast-log "$WORK/holdfast" "$(holdfast_log_path holdfast-log)"; }
start_holdfast_base() { run_holdfast holdfast-base "$WORK/holdfast-base" "$(holdfast_log_path holdfast-base)"; }

start_loopfloor() {
	start_proc loopfloor "$WORK/logs/loopfloor.log" "$WORK/loopfloor" \
		-listen "127.0.0.1:${PORT_OF[loopfloor]}" -upstreams "127.0.0.1:$B1,127.0.0.1:$B2"
}

# check_balance NAME PORT: both backends answer through the proxy (each
# backend names itself in X-Backend). A warning only: the numbers of a proxy
# that sends everything to one backend are still shown.
check_balance() {
	local seen
	seen=$(for _ in 1 2 3 4 5 6; do
		curl -s -o /dev/null -m 2 -D - "http://127.0.0.1:$2/" | tr -d '\r' | awk 'tolower($1) == "x-backend:" {print $2}'
	done | sort -u | tr '\n' ' ')
	if [[ $seen != "$B1 $B2 " && $seen != "$B2 $B1 " ]]; then
		log "WARNING: $1 did not spread 6 requests over both backends (answered by: ${seen:-none})"
		NOTES+=("$1 did not spread 6 check requests over both backends (answered by ports: ${seen:-none}).")
	fi
}

for t in $PROXIES; do
	wants "$t" || continue
	log "starting $t on 127.0.0.1:${PORT_OF[$t]}"
	LAST_PID=""
	if "start_${t//-/_}" && wait_ready "$t" "$LAST_PID" "${PORT_OF[$t]}" "$WORK/logs/$t.log"; then
		PID_OF[$t]=$LAST_PID
		check_balance "$t" "${PORT_OF[$t]}"
		continue
	fi
	if [[ -n $LAST_PID ]]; then
		stop_proc "$LAST_PID" "$t"
		forget_proc "$LAST_PID"
	fi
	if [[ $t == holdfast* ]]; then
		skip_target "$t" "'holdfast serve' did not start (does the serve command exist yet? its log was shown on stderr)"
	else
		skip_target "$t" "failed to start (its log was shown on stderr)"
	fi
done
((${#WANT[@]} > 0)) || die "no target could be started"

# ---------------------------------------------------------------- measuring

version_of() {
	case $1 in
	direct) echo "bench/backend ($(go version | awk '{print $3}'))" ;;
	nginx) nginx -v 2>&1 | sed 's/^nginx version: //' ;;
	haproxy) haproxy -v 2>/dev/null | head -n 1 | awk '{print "haproxy " $3}' ;;
	caddy) caddy version 2>/dev/null | awk '{print "caddy " $1}' ;;
	holdfast) echo "holdfast (${HOLDFAST_BIN:-built from this tree})" ;;
	holdfast-nometrics) echo "holdfast (metrics off, -tags nometrics; ${HOLDFAST_NOMETRICS_BIN:-built from this tree})" ;;
	holdfast-log) echo "holdfast (access log to a file; ${HOLDFAST_BIN:-built from this tree})" ;;
	holdfast-base) echo "holdfast, earlier build ($HOLDFAST_BASE_BIN)" ;;
	loopfloor) echo "bench/loopfloor (not a proxy; $(go version | awk '{print $3}'))" ;;
	esac
}

# start_wrk TARGET DURATION OUTFILE: wrk in the background, its PID (wrk's
# own: taskset execs it) in LOAD_PID.
start_wrk() {
	"${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$2" --latency \
		"http://127.0.0.1:${PORT_OF[$1]}/" >"$3" 2>&1 &
	LOAD_PID=$!
}

# parse_wrk FILE: "req/s p50_ms p99_ms errors requests", or exit 1.
parse_wrk() {
	awk '
	function ms(v,   n, u) {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") return n / 1000
		if (u == "ms") return n
		if (u == "s") return n * 1000
		if (u == "m") return n * 60000
		if (u == "h") return n * 3600000
		return -1
	}
	/Latency Distribution/ { dist = 1; next }
	dist && $1 == "50%" { p50 = ms($2) }
	dist && $1 == "99%" { p99 = ms($2) }
	/ requests in / { reqs = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Non-2xx or 3xx responses:/ { err += $NF }
	/Socket errors:/ { for (i = 3; i <= NF; i++) { x = $i; gsub(/,/, "", x); if (x ~ /^[0-9]+$/) err += x } }
	END {
		if (rps == "" || p50 == "" || p99 == "" || reqs == "" || p50 < 0 || p99 < 0) exit 1
		printf "%.2f %.3f %.3f %d %d\n", rps, p50, p99, err, reqs
	}' "$1"
}

# How busy is the machine before we start? (The load average would also
# count the benchmark's own previous runs.)
m0=$(machine_ticks)
o0=$(our_ticks "$$")
nap 2
OTHER_START=$(other_pct "$m0" "$(machine_ticks)" "$o0" "$(our_ticks "$$")")
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
if awk -v x="$OTHER_START" -v l="$OTHER_LIMIT" 'BEGIN {exit !(x > l)}'; then
	log "WARNING: other processes are using $OTHER_START% of the machine's CPU right now: they will disturb the numbers"
else
	log "machine is quiet: other processes used $OTHER_START% of the CPU over the last 2 s"
fi
log "targets: ${WANT[*]}; $ROUNDS rounds of wrk -t$THREADS -c$CONNS -d$DURATION, warm-up $WARMUP, PIN=$PIN, ACCESS_LOG=$ACCESS_LOG, UPSTREAM_IDLE=$UPSTREAM_IDLE"
if [[ $WARMUP != 0 ]]; then
	for t in "${WANT[@]}"; do
		log "warm-up $t ($WARMUP)"
		start_wrk "$t" "$WARMUP" "$WORK/logs/warmup-$t.txt"
		wait "$LOAD_PID" || log "warm-up of $t failed (see next runs)"
		LOAD_PID=""
	done
fi

# start_wakers TARGET OUTFILE: WAKERS connections to TARGET from
# bench/idleconns, each making its request again every WAKE_EVERY, in the
# background (WAKER_PID) once every one is open and answered; returns 1
# if they could not all be opened.
start_wakers() {
	local deadline
	"${WRK_PIN[@]}" "$WORK/idleconns" -addr "127.0.0.1:${PORT_OF[$1]}" -n "$WAKERS" -every "$WAKE_EVERY" \
		<"$WORK/wakers-hold" >"$2" 2>"$2.err" &
	WAKER_PID=$!
	exec 4>"$WORK/wakers-hold" # idleconns goes on until this closes
	deadline=$((SECONDS + 60))
	until grep -qs '^ready ' "$2"; do
		if ! proc_alive "$WAKER_PID" || ((SECONDS >= deadline)); then
			log "idleconns could not open $WAKERS connections (WAKERS) to $1:"
			show_log "$2.err"
			exec 4>&-
			stop_load
			return 1
		fi
		sleep 0.1
	done
}

# waker_ticks: the CPU ticks the WAKERS' idleconns has used so far (0 when
# none runs): ours, not other processes', though it is not yet reaped.
waker_ticks() {
	local t=""
	[[ -n $WAKER_PID ]] && t=$(sed 's/.*) //' "/proc/$WAKER_PID/stat" 2>/dev/null | awk '{print $12 + $13}')
	echo "${t:-0}"
}

# stop_wakers OUTFILE: ends the WAKERS connections and sets WAKE_FAILED to
# how many of their requests failed, or returns 1 if idleconns did not say.
WAKE_FAILED=0
stop_wakers() {
	local deadline
	exec 4>&- # end of input: idleconns stops, checks, closes all and exits
	deadline=$((SECONDS + 30))
	while proc_alive "$WAKER_PID" && ((SECONDS < deadline)); do sleep 0.1; done
	stop_load
	WAKE_FAILED=$(awk '/^again / {print $4}' "$1")
	if [[ -z $WAKE_FAILED ]]; then
		log "idleconns (WAKERS) did not report its requests:"
		show_log "$1.err"
		return 1
	fi
	if ((WAKE_FAILED > 0)); then
		log "$WAKE_FAILED of the WAKERS connections failed: $(grep -m1 'first failure' "$1.err" | sed 's/^idleconns: //')"
	fi
}

# measure TARGET ROUND ATTEMPT: one wrk run. Sets MEASURED to the result
# line "round req/s p50 p99 rss_kib errors requests other% cpu_us conns" or
# returns 1: cpu_us is the CPU time (user + system) the target's processes
# used during the run per request wrk completed, conns the TCP connections
# the backends accepted during the run.
# wrk runs in the background and the shell waits for it with `wait`, which a
# signal interrupts at once (a foreground child would delay the traps until
# it ends); cleanup stops it.
MEASURED=""
measure() {
	local t=$1 r=$2 a=$3 f rc=0 m0 m1 o0 o1 c0 c1 n0 n1 rss other line cpu wakef wfailed=0
	f="$WORK/logs/wrk-$t-$r-$a.txt"
	wakef="$WORK/logs/wakers-$t-$r-$a.txt"
	MEASURED=""
	if ((WAKERS > 0)); then
		start_wakers "$t" "$wakef" || return 1
	fi
	n0=$(backend_conns "${STATS_PORTS[@]}")
	m0=$(machine_ticks)
	o0=$(($(our_ticks "$$") + $(waker_ticks)))
	c0=$(ticks_of "${PID_OF[$t]}")
	start_wrk "$t" "$DURATION" "$f"
	wait "$LOAD_PID" || rc=$?
	LOAD_PID=""
	c1=$(ticks_of "${PID_OF[$t]}")
	o1=$(($(our_ticks "$$") + $(waker_ticks)))
	m1=$(machine_ticks)
	n1=$(backend_conns "${STATS_PORTS[@]}")
	rss=$(rss_kib_of "${PID_OF[$t]}")
	other=$(other_pct "$m0" "$m1" "$o0" "$o1")
	if ((WAKERS > 0)); then
		stop_wakers "$wakef" || return 1
		wfailed=$WAKE_FAILED
	fi
	if ((rc != 0)) || ! line=$(parse_wrk "$f"); then
		log "wrk against $t failed (exit $rc):"
		show_log "$f"
		return 1
	fi
	cpu=$(us_per $((c1 - c0)) "$(awk '{print $5}' <<<"$line")")
	MEASURED=$(echo "$r $line $rss $other ${cpu:-0} $((n1 - n0)) $wfailed" | awk '{print $1, $2, $3, $4, $7, $5 + $11, $6, $8, $9, $10}')
}

FAILED_RUNS=()
n=${#WANT[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	order=()
	for ((k = 0; k < n; k++)); do order+=("${WANT[(r - 1 + k) % n]}"); done
	log "round $r/$ROUNDS: ${order[*]}"
	for t in "${order[@]}"; do
		best=""
		for ((a = 0; a <= BUSY_RETRIES; a++)); do
			nap "$PAUSE"
			if ! measure "$t" "$r" "$a"; then
				best=""
				break
			fi
			line=$MEASURED
			read -r _ rps p50 p99 rss errs _ other cpu conns <<<"$line"
			log "$(printf '  %-18s %10s req/s  p50 %8s ms  p99 %8s ms  CPU %6s µs/req  rss %6.1f MiB  upstream conns %s  errors %s  other CPU %s%%' \
				"$t" "$rps" "$p50" "$p99" "$cpu" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$conns" "$errs" "$other")"
			# keep the attempt least disturbed by other processes
			if [[ -z $best ]] || awk -v x="$other" -v y="$(awk '{print $8}' <<<"$best")" 'BEGIN {exit !(x < y)}'; then
				best=$line
			fi
			awk -v x="$other" -v l="$OTHER_LIMIT" 'BEGIN {exit !(x > l)}' || break
			((a == BUSY_RETRIES)) || log "  other processes used $other% of the CPU during that run: running $t again"
		done
		if ! proc_alive "${PID_OF[$t]}"; then
			log "$t died during round $r"
			show_log "$WORK/logs/$t.log"
		fi
		if [[ -z $best ]]; then
			FAILED_RUNS+=("$t round $r")
			continue
		fi
		echo "$best" >>"$WORK/results/$t"
	done
done

# ---------------------------------------------------------------- after the rounds

# Access logs: how many lines each target wrote, as a check that logging
# was on (warm-up and check requests included).
ALOG_COUNTS=()
for t in "${WANT[@]}"; do
	f=$(access_log_file "$t")
	if [[ -f $f ]]; then
		ALOG_COUNTS+=("$t $(wc -l <"$f") lines ($(du -h "$f" | cut -f1))")
	elif [[ $t != direct ]] && { ((ACCESS_LOG == 1)) || [[ $t == holdfast-log ]]; }; then
		ALOG_COUNTS+=("$t: no access log file")
	fi
done

# Profiles: stop each profiled holdfast now with SIGTERM, so that it writes
# its profile, and check that it did.
PROFILES=()
if [[ -n $PROFILE_DIR ]]; then
	for t in holdfast holdfast-nometrics holdfast-log; do
		[[ -n ${PID_OF[$t]-} ]] || continue
		log "stopping $t (SIGTERM) so that it writes $PROFILE_DIR/$t.pprof"
		stop_proc "${PID_OF[$t]}" "$t" 30
		forget_proc "${PID_OF[$t]}"
		if [[ -s $PROFILE_DIR/$t.pprof ]]; then
			PROFILES+=("$t: $PROFILE_DIR/$t.pprof ($(du -h "$PROFILE_DIR/$t.pprof" | cut -f1))")
		else
			PROFILES+=("$t: no profile written to $PROFILE_DIR/$t.pprof (does this binary read HOLDFAST_CPUPROFILE?)")
			log "WARNING: $t wrote no profile to $PROFILE_DIR/$t.pprof; its log:"
			show_log "$WORK/logs/$t.log"
		fi
	done
fi

# ---------------------------------------------------------------- report

col() { awk -v c="$2" '{print $c}' "$1"; }

declare -A RPS P50 P99 RSS ERRS RUNS OTHER OTHER_MAX CPU UPCONNS
for t in "${WANT[@]}"; do
	f="$WORK/results/$t"
	[[ -s $f ]] || continue
	RPS[$t]=$(col "$f" 2 | median)
	P50[$t]=$(col "$f" 3 | median)
	P99[$t]=$(col "$f" 4 | median)
	RSS[$t]=$(col "$f" 5 | sort -g | tail -n 1)
	ERRS[$t]=$(col "$f" 6 | awk '{s += $1} END {print s + 0}')
	OTHER[$t]=$(col "$f" 8 | median)
	OTHER_MAX[$t]=$(col "$f" 8 | sort -g | tail -n 1)
	CPU[$t]=$(col "$f" 9 | median)
	UPCONNS[$t]=$(col "$f" 10 | sort -g | tail -n 1)
	RUNS[$t]=$(wc -l <"$f")
done

# same_round_ratios A B COLUMN: A ÷ B of COLUMN, round by round (the two ran
# in the same round, close in time, so the spread of these is the noise).
same_round_ratios() {
	awk -v c="$3" 'NR == FNR {on[$1] = $c; next} ($1 in on) && $c > 0 {printf "%s%.2f", sep, on[$1] / $c; sep = ", "}' \
		"$WORK/results/$1" "$WORK/results/$2"
}

report() {
	local t
	echo "# holdfast benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $NPROC CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)."
	echo
	echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency, $ROUNDS interleaved round(s) (order rotated each round), warm-up $WARMUP per target;" \
		"body $SIZE bytes from 2 backends (round robin); PIN=$PIN ($PIN_DESC);" \
		"proxies see $SERVER_NPROC CPU(s): nginx worker_processes and haproxy nbthread $SERVER_NPROC;" \
		"access logs $( ((ACCESS_LOG == 1)) && echo "on, to files (ACCESS_LOG=1)" || echo "off (ACCESS_LOG=0)");" \
		"upstream idle timeout $UPSTREAM_IDLE (UPSTREAM_IDLE)$( ((WAKERS > 0)) && echo "; beside wrk, $WAKERS connections (WAKERS) each making a request every $WAKE_EVERY ±25% (WAKE_EVERY), not counted in req/s, their failures counted in errors")."
	echo "Medians over rounds; RSS is the max over rounds of VmRSS summed over the target's processes, sampled after each run;" \
		"CPU µs/req is the user + system CPU time of the target's processes (of the backend for direct) during a run, divided by the requests wrk completed;" \
		"upstream conns is the max over rounds of the TCP connections the backends accepted during a measured run (for direct: wrk's own);" \
		"other CPU % is the median share of the machine's CPU used during a run by processes this script did not start."
	echo
	echo "| target | req/s | p50 ms | p99 ms | CPU µs/req | max RSS MiB | req/s vs nginx | req/s vs direct | p99 vs nginx | CPU vs nginx | upstream conns | errors | other CPU % | version |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for t in "${WANT[@]}"; do
		if [[ -z ${RPS[$t]-} ]]; then
			echo "| $t | - | - | - | - | - | - | - | - | - | - | all runs failed | - | $(version_of "$t") |"
			continue
		fi
		printf '| %s | %.0f | %.3f | %.3f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
			"$t" "${RPS[$t]}" "${P50[$t]}" "${P99[$t]}" "${CPU[$t]}" "$(awk -v k="${RSS[$t]}" 'BEGIN {print k / 1024}')" \
			"$(ratio "${RPS[$t]}" "${RPS[nginx]-}")" "$(ratio "${RPS[$t]}" "${RPS[direct]-}")" \
			"$(ratio "${P99[$t]}" "${P99[nginx]-}")" "$(ratio "${CPU[$t]}" "${CPU[nginx]-}")" "${UPCONNS[$t]}" \
			"${ERRS[$t]}" "$(printf '%.1f' "${OTHER[$t]}")" "$(version_of "$t")"
	done
	for s in "${SKIPPED[@]}"; do
		echo "| ${s%%:*} | - | - | - | - | - | - | - | - | - | - | not measured | - | ${s#*: } |"
	done
	echo
	local notes=("${NOTES[@]}")
	((${#FAILED_RUNS[@]} == 0)) || notes+=("failed wrk runs (left out of the medians): ${FAILED_RUNS[*]}.")
	for t in "${WANT[@]}"; do
		[[ -n ${RUNS[$t]-} && ${RUNS[$t]} != "$ROUNDS" ]] && notes+=("$t: medians over ${RUNS[$t]} of $ROUNDS runs.")
		[[ -n ${ERRS[$t]-} && ${ERRS[$t]} != 0 ]] && notes+=("$t: ${ERRS[$t]} errors (non-2xx/3xx responses or socket errors) during the measured runs: its req/s is not comparable.")
		if [[ -n ${OTHER_MAX[$t]-} ]] && awk -v x="${OTHER_MAX[$t]}" -v l="$OTHER_LIMIT" 'BEGIN {exit !(x > l)}'; then
			BUSY=1
		fi
	done
	if [[ -n ${RPS[holdfast]-} && -n ${RPS[holdfast-nometrics]-} ]]; then
		notes+=("cost of the request metrics: holdfast ÷ holdfast-nometrics = $(ratio "${RPS[holdfast]}" "${RPS[holdfast-nometrics]}") in median req/s, $(ratio "${P99[holdfast]}" "${P99[holdfast-nometrics]}") in median p99, $(ratio "${CPU[holdfast]}" "${CPU[holdfast-nometrics]}") in median CPU µs/req; req/s ratio round by round: $(same_round_ratios holdfast holdfast-nometrics 2 | sed 's/^$/n\/a/').")
	fi
	if [[ -n ${RPS[holdfast]-} && -n ${RPS[holdfast-base]-} ]]; then
		notes+=("against the earlier build: holdfast ÷ holdfast-base = $(ratio "${RPS[holdfast]}" "${RPS[holdfast-base]}") in median req/s, $(ratio "${P99[holdfast]}" "${P99[holdfast-base]}") in median p99, $(ratio "${CPU[holdfast]}" "${CPU[holdfast-base]}") in median CPU µs/req; req/s ratio round by round: $(same_round_ratios holdfast holdfast-base 2 | sed 's/^$/n\/a/').")
	fi
	if [[ -n ${RPS[holdfast]-} && -n ${RPS[holdfast-log]-} ]]; then
		local both=""
		((ACCESS_LOG == 0)) || both=" (with ACCESS_LOG=1 holdfast logs too, to its own file: both rows pay for a log)"
		notes+=("cost of the access log: holdfast ÷ holdfast-log = $(ratio "${RPS[holdfast]}" "${RPS[holdfast-log]}") in median req/s, $(ratio "${P99[holdfast]}" "${P99[holdfast-log]}") in median p99, $(ratio "${CPU[holdfast]}" "${CPU[holdfast-log]}") in median CPU µs/req ($(awk -v a="${CPU[holdfast-log]}" -v b="${CPU[holdfast]}" 'BEGIN {printf "%+.1f", a - b}') µs per request with the log); req/s ratio round by round: $(same_round_ratios holdfast holdfast-log 2 | sed 's/^$/n\/a/')$both.")
	fi
	((${#ALOG_COUNTS[@]} == 0)) || notes+=("access log files (warm-up and check requests included): $(printf '%s; ' "${ALOG_COUNTS[@]}" | sed 's/; $//').")
	if ((${#PROFILES[@]} > 0)); then
		notes+=("CPU profiles (HOLDFAST_CPUPROFILE, warm-up and all rounds; profiling itself costs holdfast some CPU): $(printf '%s; ' "${PROFILES[@]}" | sed 's/; $//').")
	fi
	((BUSY == 0)) || notes+=("WARNING: other processes used more than $OTHER_LIMIT% of the machine's CPU during some kept runs, even after up to $BUSY_RETRIES retries (column 'other CPU %', per run below; others used $OTHER_START% just before the start; 1-min load average $LOAD_START at the start, $(cut -d' ' -f1 /proc/loadavg) at the end): these numbers measure the neighbours as much as the proxies. Rerun on a quiet machine.")
	for s in "${notes[@]}"; do echo "- $s"; done
	((${#notes[@]} == 0)) || echo
	echo "<details><summary>every run</summary>"
	echo
	echo "| target | round | req/s | p50 ms | p99 ms | CPU µs/req | RSS MiB | upstream conns | errors | other CPU % |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for t in "${WANT[@]}"; do
		[[ -s $WORK/results/$t ]] || continue
		awk -v t="$t" '{printf "| %s | %d | %.0f | %.3f | %.3f | %.1f | %.1f | %d | %d | %.1f |\n", t, $1, $2, $3, $4, $9, $5 / 1024, $10, $6, $8}' "$WORK/results/$t"
	done
	echo
	echo "</details>"
}

BUSY=0
report_text=$(report)
printf '%s\n' "$report_text"
if [[ -n $OUT ]]; then
	mkdir -p "$(dirname "$OUT")"
	printf '%s\n' "$report_text" >"$OUT"
	log "report written to $OUT"
fi

if ((SKIP_FAILURES > 0 || ${#FAILED_RUNS[@]} > 0)); then
	exit 1
fi
exit 0
