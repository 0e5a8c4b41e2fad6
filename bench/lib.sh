# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the scripts that source this file
# bench/lib.sh: process handling, installation and /proc readings shared by
# bench/run.sh, bench/idle.sh and bench/h2.sh. Sourced, not run.
#
# Every process a script starts goes through start_proc, which records its
# PID; cleanup (installed as the EXIT trap by bench_traps) stops each of them
# by that PID, newest first, stops the load generator in LOAD_PID if one is
# running, and removes the work dir WORK. Nothing is ever stopped by name.

LOG_TAG=${LOG_TAG:-bench}

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# ---------------------------------------------------------------- processes

PIDS=()       # every process started; each is the leader of its own session
NAMES=()      # names for messages, same index
STOP_WAITS=() # seconds to wait after SIGTERM before SIGKILL, same index
LOAD_PID=""   # the load generator running now, if any (wrk, h2load, idleconns)
WAKER_PID=""  # bench/run.sh's WAKERS (idleconns -every), while they run
NAP_PID=""    # the sleep of nap, while it runs
WORK=""
CLEANED=0
START_PIN=() # command prefix (taskset -c N) for the processes start_proc starts
STOP_WAIT=5  # the wait after SIGTERM for the processes start_proc starts

# proc_alive PID: running and not a zombie.
proc_alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z ]]
}

# session_pids SID: the live processes of a session created with setsid by
# start_proc (a proxy's master and its workers).
session_pids() {
	ps -o pid=,stat= --sid "$1" 2>/dev/null | awk '$2 !~ /^Z/ {print $1}'
}

# stop_proc PID NAME [WAIT]: SIGTERM, up to WAIT seconds (default 5) for the
# session to empty, then SIGKILL to the process group, and reap.
stop_proc() {
	local pid=$1 name=$2 wait=${3:-5} i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < wait * 10; i++)); do
		[[ -n $(session_pids "$pid") ]] || break
		sleep 0.1
	done
	if [[ -n $(session_pids "$pid") ]]; then
		log "$name (pid $pid) still running ${wait}s after SIGTERM: SIGKILL to its process group"
		# The group was created by setsid for this process: it holds only
		# the process started and the workers it forked.
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# forget_proc PID: drop a process that was stopped already from the list,
# so that cleanup never signals its PID again (it may have been reused).
forget_proc() {
	local i keep_p=() keep_n=() keep_w=()
	for ((i = 0; i < ${#PIDS[@]}; i++)); do
		[[ ${PIDS[i]} == "$1" ]] && continue
		keep_p+=("${PIDS[i]}")
		keep_n+=("${NAMES[i]}")
		keep_w+=("${STOP_WAITS[i]}")
	done
	PIDS=("${keep_p[@]}")
	NAMES=("${keep_n[@]}")
	STOP_WAITS=("${keep_w[@]}")
}

# stop_load: stops the load generators in LOAD_PID and WAKER_PID, if any.
stop_load() {
	local p
	for p in "$LOAD_PID" "$WAKER_PID"; do
		if [[ -n $p ]]; then
			kill -TERM "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	LOAD_PID=""
	WAKER_PID=""
	return 0
}

# nap SECONDS: sleep in the background and wait for it, so that a signal
# reaches the traps at once (a foreground sleep would delay them until it
# ends).
nap() {
	sleep "$1" &
	NAP_PID=$!
	wait "$NAP_PID" || true
	NAP_PID=""
}

cleanup() {
	((CLEANED == 0)) || return 0
	CLEANED=1
	set +e
	local i
	if [[ -n $NAP_PID ]]; then kill -TERM "$NAP_PID" 2>/dev/null; fi
	stop_load
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_proc "${PIDS[i]}" "${NAMES[i]}" "${STOP_WAITS[i]}"
	done
	if [[ -n $WORK && -d $WORK ]]; then rm -rf -- "$WORK"; fi
}

bench_traps() {
	trap cleanup EXIT
	trap 'log "interrupted: stopping everything"; exit 130' INT
	trap 'log "terminated: stopping everything"; exit 143' TERM
}

# start_proc NAME LOGFILE CMD...: starts CMD in its own session (setsid, so
# that a proxy's workers can be found and stopped with it), behind the
# prefix START_PIN, and records its PID in LAST_PID.
LAST_PID=""
start_proc() {
	local name=$1 logf=$2 sid i
	shift 2
	"${START_PIN[@]}" setsid "$@" </dev/null >"$logf" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
	NAMES+=("$name")
	STOP_WAITS+=("$STOP_WAIT")
	# setsid execs in place (no fork) when its caller is not a process group
	# leader, which a background job of a script never is; check anyway: the
	# child must become the leader of its own session (or die, which
	# wait_ready reports) within a few seconds.
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

# wait_ready NAME PID PORT LOGFILE [SCHEME]: bounded wait until GET / on
# 127.0.0.1:PORT answers 200 (SCHEME https: over TLS, certificate not
# checked); on failure shows the log and returns 1.
wait_ready() {
	local name=$1 pid=$2 port=$3 logf=$4 scheme=${5:-http} code="" deadline=$((SECONDS + 15))
	while :; do
		if ! proc_alive "$pid"; then
			log "$name exited while starting (pid $pid)"
			show_log "$logf"
			return 1
		fi
		code=$(curl -k -s -o /dev/null -m 2 -w '%{http_code}' "$scheme://127.0.0.1:$port/" 2>/dev/null) || true
		[[ $code == 200 ]] && return 0
		if ((SECONDS >= deadline)); then
			log "$name did not answer 200 on $scheme://127.0.0.1:$port/ within 15s (last status: ${code:-none})"
			show_log "$logf"
			return 1
		fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------- install

declare -A PKG_OF=([nginx]=nginx [haproxy]=haproxy [caddy]=caddy [wrk]=wrk [curl]=curl
	[h2load]=nghttp2-client [openssl]=openssl [ss]=iproute2)
INSTALL=${INSTALL:-1}

have_cmd() { command -v "$1" >/dev/null || [[ -x /usr/sbin/$1 ]]; }

# install_cmds CMD...: apt-get installs the packages (PKG_OF) of the CMDs
# that are missing. Sets UNAVAILABLE to those whose package is not in this
# machine's Debian repositories; the caller decides whether that is fatal.
# Dies when something is missing and INSTALL=0, or not root, or apt fails.
UNAVAILABLE=()
install_cmds() {
	local c p cand missing=() pkgs=()
	UNAVAILABLE=()
	for c in "$@"; do have_cmd "$c" || missing+=("$c"); done
	((${#missing[@]} > 0)) || return 0
	((INSTALL == 1)) || die "missing: ${missing[*]} (INSTALL=0, not installing)"
	((EUID == 0)) || die "missing: ${missing[*]}; run as root to apt-get install them"
	log "missing: ${missing[*]}: apt-get update, then install"
	apt-get update -qq >&2 || die "apt-get update failed"
	for c in "${missing[@]}"; do
		p=${PKG_OF[$c]:-$c}
		cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
		if [[ -z $cand || $cand == "(none)" ]]; then
			UNAVAILABLE+=("$c")
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
}
PATH=$PATH:/usr/sbin:/sbin

# ---------------------------------------------------------------- CPUs

# cpu_list: sets CPUS to the CPUs this shell may run on, in order.
CPUS=()
cpu_list() {
	local aff part c
	CPUS=()
	aff=$(taskset -cp $$ 2>/dev/null | sed 's/.*: //') || aff=""
	for part in ${aff//,/ }; do
		if [[ $part == *-* ]]; then
			for ((c = ${part%-*}; c <= ${part#*-}; c++)); do CPUS+=("$c"); done
		else
			CPUS+=("$part")
		fi
	done
	if ((${#CPUS[@]} == 0)); then
		local np
		np=$(nproc)
		for ((c = 0; c < np; c++)); do CPUS+=("$c"); done
	fi
}

# ---------------------------------------------------------------- /proc

CLK_TCK=$(getconf CLK_TCK)

# rss_kib_of PID: VmRSS of the session of PID (a proxy's master and workers
# together), from /proc/PID/status, in KiB.
rss_kib_of() {
	local p r total=0
	for p in $(session_pids "$1"); do
		r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || r=""
		total=$((total + ${r:-0}))
	done
	echo "$total"
}

# ticks_of PID: CPU time used so far by the session of PID, user plus
# system (fields 14 and 15 of /proc/PID/stat), in clock ticks (CLK_TCK a
# second), summed over its processes.
ticks_of() {
	local p t total=0
	for p in $(session_pids "$1"); do
		# after "pid (comm) ", field 14 of the line is the 12th
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
		total=$((total + ${t:-0}))
	done
	echo "$total"
}

# us_per TICKS COUNT: TICKS clock ticks in µs per item of COUNT (1 decimal),
# or empty when COUNT is 0.
us_per() {
	awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN {if (n > 0) printf "%.1f", t * 1e6 / hz / n}'
}

# ---------------------------------------------------------------- other load

# machine_ticks: "busy total" CPU ticks of the whole machine (/proc/stat):
# busy = user + nice + system + steal; total adds idle and iowait. Interrupt
# time is left out of both: loopback traffic is mostly softirq time that no
# process is charged for.
machine_ticks() {
	awk '/^cpu / {b = $2 + $3 + $4 + $9; print b, b + $5 + $6; exit}' /proc/stat
}

# our_ticks SHELLPID: CPU ticks used so far by every process this script
# started (the backends and proxies, workers included) plus the shell
# SHELLPID and the children it has waited for (wrk, h2load).
our_ticks() {
	local pid t total=0
	for pid in "${PIDS[@]}"; do
		t=$(ticks_of "$pid")
		total=$((total + t))
	done
	t=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}')
	echo $((total + t))
}

# other_pct M0 M1 O0 O1: % of the machine's CPU used by others between two
# samples of machine_ticks (M) and our_ticks (O).
other_pct() {
	awk -v m0="$1" -v m1="$2" -v o0="$3" -v o1="$4" 'BEGIN {
		split(m0, a, " "); split(m1, b, " "); tot = b[2] - a[2]
		x = (tot > 0) ? 100 * ((b[1] - a[1]) - (o1 - o0)) / tot : 0
		printf "%.1f", (x < 0) ? 0 : x }'
}

# ---------------------------------------------------------------- backends

# start_backend NAME PORT STATS_PORT SIZE: bench/backend ($WORK/backend) on
# 127.0.0.1:PORT with its counters on 127.0.0.1:STATS_PORT, pinned by
# START_PIN; waits until it answers. Dies if it does not start.
start_backend() {
	local name=$1 port=$2 stats=$3 size=$4
	start_proc "$name" "$WORK/logs/$name.log" \
		"$WORK/backend" -addr "127.0.0.1:$port" -stats "127.0.0.1:$stats" -size "$size"
	wait_ready "$name" "$LAST_PID" "$port" "$WORK/logs/$name.log" || die "$name did not start"
}

# backend_conns STATS_PORT...: the TCP connections these backends have
# accepted since they started, summed; dies if one does not answer.
backend_conns() {
	local p v total=0
	for p in "$@"; do
		v=$(curl -s -m 2 "http://127.0.0.1:$p/conns") || die "backend stats on 127.0.0.1:$p did not answer"
		[[ $v =~ ^[0-9]+$ ]] || die "backend stats on 127.0.0.1:$p answered '$v'"
		total=$((total + v))
	done
	echo "$total"
}

# build_go OUT PKG [GO BUILD FLAGS...]: go build from the repository root
# (ROOT) into OUT, the build log in $WORK/logs; returns 1 and shows the log
# on failure.
build_go() {
	local out=$1 pkg=$2 logf
	shift 2
	logf="$WORK/logs/build-$(basename "$out").log"
	if ! (cd "$ROOT" && go build "$@" -o "$out" "$pkg") >"$logf" 2>&1; then
		show_log "$logf"
		return 1
	fi
}

# median: the median of the numbers on stdin, one a line (empty if none).
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# ratio A B: A/B with 2 decimals, or n/a.
ratio() {
	if [[ -z $1 || -z $2 ]]; then echo "n/a"; else awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "n/a"; else printf "%.2f", a / b}'; fi
}
