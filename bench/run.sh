#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions reached through "start_$t" and traps
# bench/run.sh: holdfast side by side with nginx, haproxy and caddy.
#
# Every proxy runs on its own loopback port in front of the same two backends
# (bench/backend, round robin, keep-alive to the upstreams everywhere), and
# wrk loads each target in interleaved rounds. The report (a Markdown table:
# median req/s, p50, p99, max RSS and the ratios to nginx and to direct) goes
# to stdout, and also to $OUT when set; progress and errors go to stderr.
# See bench/README.md for how to read it.
#
# Usage (from anywhere; needs root, or the tools below already installed):
#   bash bench/run.sh
#   ROUNDS=2 DURATION=3s TARGETS="direct nginx haproxy caddy" bash bench/run.sh
#   # what holdfast's request metrics cost: the same holdfast with and without
#   TARGETS="nginx holdfast holdfast-nometrics" bash bench/run.sh
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
#                     holdfast-nometrics (not in the default) = the holdfast
#                     target's configuration, built with -tags nometrics (no
#                     request metrics), to compare with holdfast
#   PIN       [split] CPU pinning with taskset:
#                       split = wrk on the last CPU, backends and proxies on
#                               the other CPUs (nginx worker_processes and
#                               haproxy nbthread = that many CPUs)
#                       wrk   = wrk on the last CPU, the servers unpinned
#                       none  = nothing pinned
#                     (see bench/README.md for why split is the default)
#   PAUSE     [1]     seconds of idle between two runs
#   OTHER_LIMIT [10]  warn when processes the script did not start used more
#                     than this % of the machine's CPU during a run
#   BUSY_RETRIES [2]  a run so disturbed is repeated up to this many times;
#                     the least disturbed attempt is kept
#   OUT       []      also write the Markdown report to this file
#   INSTALL   [1]     0 = never run apt-get; fail if a tool is missing
#   HOLDFAST_BIN []   use this holdfast binary instead of building
#                     ./cmd/holdfast from the tree
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
PAUSE=${PAUSE:-1}
OTHER_LIMIT=${OTHER_LIMIT:-10}
BUSY_RETRIES=${BUSY_RETRIES:-2}
OUT=${OUT:-}
INSTALL=${INSTALL:-1}
HOLDFAST_BIN=${HOLDFAST_BIN:-}
HOLDFAST_NOMETRICS_BIN=${HOLDFAST_NOMETRICS_BIN:-}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
if [[ -n $OUT && $OUT != /* ]]; then OUT="$PWD/$OUT"; fi

log() { printf '[bench] %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

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
case $PIN in none | wrk | split) ;; *) die "PIN must be none, wrk or split, got '$PIN'" ;; esac

WANT=()
for t in $TARGETS; do
	case $t in direct | nginx | haproxy | caddy | holdfast | holdfast-nometrics) ;;
	*) die "unknown target '$t' in TARGETS (known: direct nginx haproxy caddy holdfast holdfast-nometrics)" ;;
	esac
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

# ---------------------------------------------------------------- processes

PIDS=()  # every process we started; each is the leader of its own session
NAMES=() # names for messages, same index
WRK_PID="" # the wrk running now, if any (see start_wrk)
WORK=""
CLEANED=0

# proc_alive PID: running and not a zombie.
proc_alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z ]]
}

# session_pids SID: the live processes of a session we created with setsid
# (a proxy's master and its workers).
session_pids() {
	ps -o pid=,stat= --sid "$1" 2>/dev/null | awk '$2 !~ /^Z/ {print $1}'
}

stop_proc() { # pid name
	local pid=$1 name=$2 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		[[ -n $(session_pids "$pid") ]] || break
		sleep 0.1
	done
	if [[ -n $(session_pids "$pid") ]]; then
		log "$name (pid $pid) still running 5s after SIGTERM: SIGKILL to its process group"
		# The group was created by setsid for this process: it holds only
		# the process we started and the workers it forked.
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	((CLEANED == 0)) || return 0
	CLEANED=1
	set +e
	local i
	if [[ -n $WRK_PID ]]; then
		kill -TERM "$WRK_PID" 2>/dev/null
		wait "$WRK_PID" 2>/dev/null
	fi
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_proc "${PIDS[i]}" "${NAMES[i]}"
	done
	if [[ -n $WORK && -d $WORK ]]; then rm -rf -- "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted: stopping everything"; exit 130' INT
trap 'log "terminated: stopping everything"; exit 143' TERM

# start_proc NAME LOGFILE CMD...: starts CMD in its own session (setsid, so
# that a proxy's workers can be found and stopped with it), pinned per PIN,
# and records its PID in LAST_PID.
LAST_PID=""
start_proc() {
	local name=$1 logf=$2 sid
	shift 2
	"${SERVER_PIN[@]}" setsid "$@" </dev/null >"$logf" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
	NAMES+=("$name")
	# setsid execs in place (no fork) when its caller is not a process group
	# leader, which a background job of a script never is; check anyway: the
	# child must become the leader of its own session (or die, which
	# wait_ready reports) within a few seconds.
	local i
	for ((i = 0; i < 100; i++)); do
		sid=$(sed 's/.*) //' "/proc/$LAST_PID/stat" 2>/dev/null | cut -d' ' -f4) || sid=""
		[[ -z $sid || $sid == "$LAST_PID" ]] && return 0
		sleep 0.05
	done
	die "$name: pid $LAST_PID did not become a session leader (session $sid): cannot track its workers"
}

show_log() { # logfile
	if [[ -s $1 ]]; then
		log "---- last lines of $1 ----"
		tail -n 20 "$1" | sed 's/^/    /' >&2
		log "----"
	else
		log "(its log $1 is empty)"
	fi
}

# wait_ready NAME PID PORT LOGFILE: bounded wait until GET / through PORT
# answers 200; on failure shows the log and returns 1.
wait_ready() {
	local name=$1 pid=$2 port=$3 logf=$4 code="" deadline=$((SECONDS + 15))
	while :; do
		if ! proc_alive "$pid"; then
			log "$name exited while starting (pid $pid)"
			show_log "$logf"
			return 1
		fi
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null) || true
		[[ $code == 200 ]] && return 0
		if ((SECONDS >= deadline)); then
			log "$name did not answer 200 on 127.0.0.1:$port within 15s (last status: ${code:-none})"
			show_log "$logf"
			return 1
		fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------- install

declare -A PKG_OF=([nginx]=nginx [haproxy]=haproxy [caddy]=caddy [wrk]=wrk [curl]=curl)
need_cmds=(wrk curl)
for t in nginx haproxy caddy; do wants "$t" && need_cmds+=("$t"); done
wants holdfast && ! command -v go >/dev/null && die "go is needed to build holdfast"
command -v go >/dev/null || die "go is needed to build the backend"

have_cmd() { command -v "$1" >/dev/null || [[ -x /usr/sbin/$1 ]]; }
missing=()
for c in "${need_cmds[@]}"; do have_cmd "$c" || missing+=("$c"); done
if ((${#missing[@]} > 0)); then
	((INSTALL == 1)) || die "missing: ${missing[*]} (INSTALL=0, not installing)"
	((EUID == 0)) || die "missing: ${missing[*]}; run as root to apt-get install them"
	log "missing: ${missing[*]}: apt-get update, then install"
	apt-get update -qq >&2 || die "apt-get update failed"
	pkgs=()
	for c in "${missing[@]}"; do
		p=${PKG_OF[$c]}
		cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
		if [[ -z $cand || $cand == "(none)" ]]; then
			case $c in
			wrk | curl) die "$p is not in this machine's Debian repositories: cannot run" ;;
			*)
				skip_target "$c" "package '$p' is not in this machine's Debian repositories: running without $c" 0
				;;
			esac
		else
			pkgs+=("$p")
		fi
	done
	if ((${#pkgs[@]} > 0)); then
		log "apt-get install -y ${pkgs[*]}"
		# policy-rc.d / RUNLEVEL=1 keep Debian's maintainer scripts from
		# starting the packages' own services where an init is running.
		DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
			apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 ||
			die "apt-get install ${pkgs[*]} failed"
	fi
fi
PATH=$PATH:/usr/sbin:/sbin
for c in "${need_cmds[@]}"; do
	if wants "$c" || [[ $c == wrk || $c == curl ]]; then
		have_cmd "$c" || die "$c still not found after install"
	fi
done
((${#WANT[@]} > 0)) || die "nothing left to measure"

# ---------------------------------------------------------------- CPUs

NPROC=$(nproc)
CPUS=()
aff=$(taskset -cp $$ 2>/dev/null | sed 's/.*: //') || aff=""
for part in ${aff//,/ }; do
	if [[ $part == *-* ]]; then
		for ((c = ${part%-*}; c <= ${part#*-}; c++)); do CPUS+=("$c"); done
	else
		CPUS+=("$part")
	fi
done
((${#CPUS[@]} > 0)) || for ((c = 0; c < NPROC; c++)); do CPUS+=("$c"); done
WRK_PIN=()
SERVER_PIN=()
if ((${#CPUS[@]} < 2)) && [[ $PIN != none ]]; then
	log "only one CPU: PIN=$PIN ignored"
	PIN=none
fi
if [[ $PIN != none ]]; then
	last=${CPUS[${#CPUS[@]} - 1]}
	WRK_PIN=(taskset -c "$last")
	if [[ $PIN == split ]]; then
		rest=$(
			IFS=,
			echo "${CPUS[*]:0:${#CPUS[@]}-1}"
		)
		SERVER_PIN=(taskset -c "$rest")
	fi
fi
# SERVER_NPROC: the CPUs the servers may use, as `nproc` counts them under
# their affinity. nginx's worker_processes and haproxy's nbthread follow it,
# as Go's GOMAXPROCS (caddy, holdfast, the backends) does by itself.
SERVER_NPROC=$("${SERVER_PIN[@]}" nproc)

# ---------------------------------------------------------------- build

WORK=$(mktemp -d "${TMPDIR:-/tmp}/holdfast-bench.XXXXXX")
mkdir -p "$WORK/logs" "$WORK/results"
log "work dir $WORK"

log "building backend"
(cd "$ROOT" && go build -o "$WORK/backend" ./bench/backend) >"$WORK/logs/build-backend.log" 2>&1 || {
	show_log "$WORK/logs/build-backend.log"
	die "building bench/backend failed"
}
if wants holdfast && [[ -n $HOLDFAST_BIN ]]; then
	[[ -x $HOLDFAST_BIN ]] || die "HOLDFAST_BIN=$HOLDFAST_BIN is not an executable file"
	log "using holdfast binary $HOLDFAST_BIN (not building)"
	cp "$HOLDFAST_BIN" "$WORK/holdfast"
elif wants holdfast; then
	log "building holdfast"
	if ! (cd "$ROOT" && go build -o "$WORK/holdfast" ./cmd/holdfast) >"$WORK/logs/build-holdfast.log" 2>&1; then
		show_log "$WORK/logs/build-holdfast.log"
		skip_target holdfast "go build ./cmd/holdfast failed (build log shown on stderr)"
	fi
fi
if wants holdfast-nometrics && [[ -n $HOLDFAST_NOMETRICS_BIN ]]; then
	[[ -x $HOLDFAST_NOMETRICS_BIN ]] || die "HOLDFAST_NOMETRICS_BIN=$HOLDFAST_NOMETRICS_BIN is not an executable file"
	log "using holdfast-nometrics binary $HOLDFAST_NOMETRICS_BIN (not building)"
	cp "$HOLDFAST_NOMETRICS_BIN" "$WORK/holdfast-nometrics"
elif wants holdfast-nometrics; then
	log "building holdfast-nometrics (-tags nometrics)"
	if ! (cd "$ROOT" && go build -tags nometrics -o "$WORK/holdfast-nometrics" ./cmd/holdfast) >"$WORK/logs/build-holdfast-nometrics.log" 2>&1; then
		show_log "$WORK/logs/build-holdfast-nometrics.log"
		skip_target holdfast-nometrics "go build -tags nometrics ./cmd/holdfast failed (build log shown on stderr)"
	fi
fi

# ---------------------------------------------------------------- ports

nports=2
for t in nginx haproxy caddy holdfast holdfast-nometrics; do wants "$t" && nports=$((nports + 1)); done
mapfile -t PORTS < <("$WORK/backend" -freeports "$nports")
((${#PORTS[@]} == nports)) || die "could not get $nports free ports from the kernel"
B1=${PORTS[0]}
B2=${PORTS[1]}
declare -A PORT_OF=([direct]=$B1)
declare -A PID_OF=()
i=2
for t in nginx haproxy caddy holdfast holdfast-nometrics; do
	if wants "$t"; then
		PORT_OF[$t]=${PORTS[i]}
		i=$((i + 1))
	fi
done

# ---------------------------------------------------------------- backends

for n in 1 2; do
	port=${PORTS[n - 1]}
	start_proc "backend$n" "$WORK/logs/backend$n.log" \
		"$WORK/backend" -addr "127.0.0.1:$port" -size "$SIZE"
	[[ $n == 1 ]] && PID_OF[direct]=$LAST_PID
	wait_ready "backend$n" "$LAST_PID" "$port" "$WORK/logs/backend$n.log" ||
		die "backend$n did not start"
done
log "backends on 127.0.0.1:$B1 and 127.0.0.1:$B2 (body $SIZE bytes)"

# ---------------------------------------------------------------- proxies

start_nginx() {
	local d="$WORK/nginx" port=${PORT_OF[nginx]} user=""
	mkdir -p "$d/tmp"
	# As root nginx would switch its workers to "nobody", who cannot enter
	# the private work dir: keep them as the current user instead.
	((EUID == 0)) && user="user root;"
	cat >"$d/nginx.conf" <<EOF
$user
worker_processes $SERVER_NPROC;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream bench {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 64;
        keepalive_requests 1000000;
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
	local d="$WORK/haproxy" port=${PORT_OF[haproxy]}
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<EOF
global
    nbthread $SERVER_NPROC
    # no maxconn: haproxy derives it from the open-files limit

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend fe
    bind 127.0.0.1:$port
    default_backend be

backend be
    balance roundrobin
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
EOF
	haproxy -c -f "$d/haproxy.cfg" >"$WORK/logs/haproxy-check.log" 2>&1 || {
		show_log "$WORK/logs/haproxy-check.log"
		return 1
	}
	# -db: foreground, no master-worker: one process whose PID we hold.
	start_proc haproxy "$WORK/logs/haproxy.log" haproxy -db -f "$d/haproxy.cfg"
}

start_caddy() {
	local d="$WORK/caddy" port=${PORT_OF[caddy]}
	mkdir -p "$d/config" "$d/data"
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
    reverse_proxy 127.0.0.1:$B1 127.0.0.1:$B2 {
        lb_policy round_robin
        transport http {
            keepalive 2m
            keepalive_idle_conns 128
            keepalive_idle_conns_per_host 64
        }
    }
}
EOF
	# HOME and XDG_* inside the work dir: caddy keeps its state there.
	start_proc caddy "$WORK/logs/caddy.log" \
		env HOME="$d" XDG_CONFIG_HOME="$d/config" XDG_DATA_HOME="$d/data" \
		caddy run --config "$d/Caddyfile" --adapter caddyfile
}

# run_holdfast TARGET: the holdfast binary $WORK/TARGET with the one
# configuration both holdfast targets share, on TARGET's port.
run_holdfast() {
	local t=$1 d="$WORK/$1.d" port=${PORT_OF[$1]}
	mkdir -p "$d"
	cat >"$d/holdfast.yaml" <<EOF
listen:
  - addr: "127.0.0.1:$port"
access_log: {path: "off"}
routes:
  - match: {path_prefix: /}
    upstream: bench
upstreams:
  bench:
    balance: round_robin
    servers:
      - {url: "http://127.0.0.1:$B1"}
      - {url: "http://127.0.0.1:$B2"}
EOF
	start_proc "$t" "$WORK/logs/$t.log" "$WORK/$t" serve -c "$d/holdfast.yaml"
}
start_holdfast() { run_holdfast holdfast; }
start_holdfast_nometrics() { run_holdfast holdfast-nometrics; }

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

for t in nginx haproxy caddy holdfast holdfast-nometrics; do
	wants "$t" || continue
	log "starting $t on 127.0.0.1:${PORT_OF[$t]}"
	LAST_PID=""
	if "start_${t//-/_}" && wait_ready "$t" "$LAST_PID" "${PORT_OF[$t]}" "$WORK/logs/$t.log"; then
		PID_OF[$t]=$LAST_PID
		check_balance "$t" "${PORT_OF[$t]}"
		continue
	fi
	if [[ -n $LAST_PID ]]; then stop_proc "$LAST_PID" "$t"; fi
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
	esac
}

# rss_kib TARGET: VmRSS of the target's processes (a proxy's master and
# workers together), from /proc/PID/status.
rss_kib() {
	local p r total=0
	for p in $(session_pids "${PID_OF[$1]}"); do
		r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || r=""
		total=$((total + ${r:-0}))
	done
	echo "$total"
}

# machine_ticks: "busy total" CPU ticks of the whole machine (/proc/stat):
# busy = user + nice + system + steal; total adds idle and iowait. Interrupt
# time is left out of both: loopback traffic is mostly softirq time that no
# process is charged for.
machine_ticks() {
	awk '/^cpu / {b = $2 + $3 + $4 + $9; print b, b + $5 + $6; exit}' /proc/stat
}

# our_ticks SHELLPID: CPU ticks used so far by every process this script
# started (the backends and proxies, workers included) plus the shell
# SHELLPID and the children it has waited for (wrk).
our_ticks() {
	local pid p t total=0
	for pid in "${PIDS[@]}"; do
		for p in $(session_pids "$pid"); do
			t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
			total=$((total + ${t:-0}))
		done
	done
	t=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}')
	echo $((total + t))
}

# start_wrk TARGET DURATION OUTFILE: wrk in the background, its PID (wrk's
# own: taskset execs it) in WRK_PID.
start_wrk() {
	"${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$2" --latency \
		"http://127.0.0.1:${PORT_OF[$1]}/" >"$3" 2>&1 &
	WRK_PID=$!
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
		if (rps == "" || p50 == "" || p99 == "" || p50 < 0 || p99 < 0) exit 1
		printf "%.2f %.3f %.3f %d %d\n", rps, p50, p99, err, reqs
	}' "$1"
}

# other_pct M0 M1 O0 O1: % of the machine's CPU used by others between two
# samples of machine_ticks (M) and our_ticks (O).
other_pct() {
	awk -v m0="$1" -v m1="$2" -v o0="$3" -v o1="$4" 'BEGIN {
		split(m0, a, " "); split(m1, b, " "); tot = b[2] - a[2]
		x = (tot > 0) ? 100 * ((b[1] - a[1]) - (o1 - o0)) / tot : 0
		printf "%.1f", (x < 0) ? 0 : x }'
}

# How busy is the machine before we start? (The load average would also
# count the benchmark's own previous runs.)
m0=$(machine_ticks)
o0=$(our_ticks "$$")
sleep 2
OTHER_START=$(other_pct "$m0" "$(machine_ticks)" "$o0" "$(our_ticks "$$")")
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
if awk -v x="$OTHER_START" -v l="$OTHER_LIMIT" 'BEGIN {exit !(x > l)}'; then
	log "WARNING: other processes are using $OTHER_START% of the machine's CPU right now: they will disturb the numbers"
else
	log "machine is quiet: other processes used $OTHER_START% of the CPU over the last 2 s"
fi
log "targets: ${WANT[*]}; $ROUNDS rounds of wrk -t$THREADS -c$CONNS -d$DURATION, warm-up $WARMUP, PIN=$PIN"
if [[ $WARMUP != 0 ]]; then
	for t in "${WANT[@]}"; do
		log "warm-up $t ($WARMUP)"
		start_wrk "$t" "$WARMUP" "$WORK/logs/warmup-$t.txt"
		wait "$WRK_PID" || log "warm-up of $t failed (see next runs)"
		WRK_PID=""
	done
fi

# measure TARGET ROUND ATTEMPT: one wrk run. Sets MEASURED to the result
# line "round req/s p50 p99 rss_kib errors requests other%" or returns 1.
# wrk runs in the background and the shell waits for it with `wait`, which a
# signal interrupts at once (a foreground child would delay the traps until
# it ends); cleanup stops it.
WRK_PID=""
MEASURED=""
measure() {
	local t=$1 r=$2 a=$3 f rc=0 m0 m1 o0 o1 rss other line
	f="$WORK/logs/wrk-$t-$r-$a.txt"
	MEASURED=""
	m0=$(machine_ticks)
	o0=$(our_ticks "$$")
	start_wrk "$t" "$DURATION" "$f"
	wait "$WRK_PID" || rc=$?
	WRK_PID=""
	o1=$(our_ticks "$$")
	m1=$(machine_ticks)
	rss=$(rss_kib "$t")
	other=$(other_pct "$m0" "$m1" "$o0" "$o1")
	if ((rc != 0)) || ! line=$(parse_wrk "$f"); then
		log "wrk against $t failed (exit $rc):"
		show_log "$f"
		return 1
	fi
	MEASURED=$(echo "$r $line $rss $other" | awk '{print $1, $2, $3, $4, $7, $5, $6, $8}')
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
			sleep "$PAUSE"
			if ! measure "$t" "$r" "$a"; then
				best=""
				break
			fi
			line=$MEASURED
			read -r _ rps p50 p99 rss errs _ other <<<"$line"
			log "$(printf '  %-18s %10s req/s  p50 %8s ms  p99 %8s ms  rss %6.1f MiB  errors %s  other CPU %s%%' \
				"$t" "$rps" "$p50" "$p99" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$errs" "$other")"
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

# ---------------------------------------------------------------- report

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() { awk -v c="$2" '{print $c}' "$1"; }
ratio() { # a b -> a/b with 2 decimals, or n/a
	if [[ -z $1 || -z $2 ]]; then echo "n/a"; else awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "n/a"; else printf "%.2f", a / b}'; fi
}

declare -A RPS P50 P99 RSS ERRS RUNS OTHER OTHER_MAX
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
	RUNS[$t]=$(wc -l <"$f")
done

report() {
	local t
	echo "# holdfast benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $NPROC CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)."
	echo
	echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency, $ROUNDS interleaved round(s) (order rotated each round), warm-up $WARMUP per target;" \
		"body $SIZE bytes from 2 backends (round robin); PIN=$PIN${WRK_PIN[*]:+ (wrk: ${WRK_PIN[*]}}${SERVER_PIN[*]:+, servers: ${SERVER_PIN[*]}}${WRK_PIN[*]:+)};" \
		"servers see $SERVER_NPROC CPU(s): nginx worker_processes and haproxy nbthread $SERVER_NPROC."
	echo "Medians over rounds; RSS is the max over rounds of VmRSS summed over the target's processes, sampled after each run;" \
		"other CPU % is the median share of the machine's CPU used during a run by processes this script did not start."
	echo
	echo "| target | req/s | p50 ms | p99 ms | max RSS MiB | req/s vs nginx | req/s vs direct | p99 vs nginx | errors | other CPU % | version |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for t in "${WANT[@]}"; do
		if [[ -z ${RPS[$t]-} ]]; then
			echo "| $t | - | - | - | - | - | - | - | all runs failed | - | $(version_of "$t") |"
			continue
		fi
		printf '| %s | %.0f | %.3f | %.3f | %.1f | %s | %s | %s | %s | %s | %s |\n' \
			"$t" "${RPS[$t]}" "${P50[$t]}" "${P99[$t]}" "$(awk -v k="${RSS[$t]}" 'BEGIN {print k / 1024}')" \
			"$(ratio "${RPS[$t]}" "${RPS[nginx]-}")" "$(ratio "${RPS[$t]}" "${RPS[direct]-}")" \
			"$(ratio "${P99[$t]}" "${P99[nginx]-}")" "${ERRS[$t]}" "$(printf '%.1f' "${OTHER[$t]}")" "$(version_of "$t")"
	done
	for s in "${SKIPPED[@]}"; do
		echo "| ${s%%:*} | - | - | - | - | - | - | - | not measured | - | ${s#*: } |"
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
		# per round: holdfast and holdfast-nometrics ran in the same round,
		# close in time, so the spread of these ratios is the noise
		local per_round
		per_round=$(awk 'NR == FNR {on[$1] = $2; next} ($1 in on) && $2 > 0 {printf "%s%.2f", sep, on[$1] / $2; sep = ", "}' \
			"$WORK/results/holdfast" "$WORK/results/holdfast-nometrics")
		notes+=("cost of the request metrics: holdfast ÷ holdfast-nometrics = $(ratio "${RPS[holdfast]}" "${RPS[holdfast-nometrics]}") in median req/s, $(ratio "${P99[holdfast]}" "${P99[holdfast-nometrics]}") in median p99; req/s ratio round by round: ${per_round:-n/a}.")
	fi
	((BUSY == 0)) || notes+=("WARNING: other processes used more than $OTHER_LIMIT% of the machine's CPU during some kept runs, even after up to $BUSY_RETRIES retries (column 'other CPU %', per run below; others used $OTHER_START% just before the start; 1-min load average $LOAD_START at the start, $(cut -d' ' -f1 /proc/loadavg) at the end): these numbers measure the neighbours as much as the proxies. Rerun on a quiet machine.")
	for s in "${notes[@]}"; do echo "- $s"; done
	((${#notes[@]} == 0)) || echo
	echo "<details><summary>every run</summary>"
	echo
	echo "| target | round | req/s | p50 ms | p99 ms | RSS MiB | errors | other CPU % |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for t in "${WANT[@]}"; do
		[[ -s $WORK/results/$t ]] || continue
		awk -v t="$t" '{printf "| %s | %d | %.0f | %.3f | %.3f | %.1f | %d | %.1f |\n", t, $1, $2, $3, $4, $5 / 1024, $6, $8}' "$WORK/results/$t"
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
