#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions reached through "start_$t" and traps
# bench/idle.sh: what idle client keep-alive connections cost each proxy in
# memory.
#
# For each target in turn, alone in front of the two backends of bench/run.sh:
# start it, warm it up, read VmRSS summed over its processes, open
# IDLE_CONNS client connections to it with bench/idleconns (each sends one
# GET and reads the response, then stays idle in keep-alive), wait SETTLE
# seconds, read VmRSS again, close every connection, wait AFTER seconds and
# read VmRSS a last time. The report (a Markdown table: bytes per idle
# connection and the ratio to nginx) goes to stdout, and also to $OUT when
# set; progress and errors go to stderr. See bench/README.md, "Idle
# keep-alive connections".
#
# Usage (from anywhere; needs root the first time, or nginx already
# installed, and an open-files limit the script may raise):
#   bash bench/idle.sh
#   IDLE_CONNS=2000 TARGETS="nginx holdfast" bash bench/idle.sh
#
# Environment variables (defaults in brackets):
#   IDLE_CONNS [10000] client connections held open at once
#   TARGETS   ["nginx haproxy caddy holdfast"] haproxy and caddy are measured
#                     only when installed (bench/run.sh installs them)
#   WARMUP    [2s]    wrk -c16 run against each target before the first RSS
#                     reading, so that it compares a proxy that has served
#                     requests with itself; 0 = none
#   SETTLE    [2]     seconds between the last connection being answered and
#                     the second RSS reading
#   AFTER     [10]    seconds between closing the connections and the last
#                     RSS reading
#   SIZE      [1024]  response body size of the backends, in bytes
#   OUT       []      also write the Markdown report to this file
#   INSTALL   [1]     0 = never run apt-get; fail if a tool is missing
#   HOLDFAST_BIN []   use this holdfast binary instead of building
#                     ./cmd/holdfast from the tree
#
# Exit status: 0 when every requested target that is installed was
# measured, 1 when one failed or on a fatal error, 130 on Ctrl-C. Every
# process the script starts is stopped on exit, by the PID it recorded, and
# the temporary work dir is removed.
set -euo pipefail

IDLE_CONNS=${IDLE_CONNS:-10000}
TARGETS=${TARGETS:-"nginx haproxy caddy holdfast"}
WARMUP=${WARMUP:-2s}
SETTLE=${SETTLE:-2}
AFTER=${AFTER:-10}
SIZE=${SIZE:-1024}
OUT=${OUT:-}
INSTALL=${INSTALL:-1}
HOLDFAST_BIN=${HOLDFAST_BIN:-}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
if [[ -n $OUT && $OUT != /* ]]; then OUT="$PWD/$OUT"; fi
LOG_TAG=idle
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

[[ $IDLE_CONNS =~ ^[1-9][0-9]*$ ]] || die "IDLE_CONNS must be a positive integer, got '$IDLE_CONNS'"
((IDLE_CONNS <= 250000)) || die "IDLE_CONNS above 250000 is not supported"
[[ $WARMUP == 0 || $WARMUP =~ ^[1-9][0-9]*[smh]?$ ]] || die "WARMUP must look like 2s or be 0, got '$WARMUP'"
[[ $SETTLE =~ ^[0-9]+$ ]] || die "SETTLE must be whole seconds, got '$SETTLE'"
[[ $AFTER =~ ^[0-9]+$ ]] || die "AFTER must be whole seconds, got '$AFTER'"
[[ $SIZE =~ ^[0-9]+$ ]] || die "SIZE must be a byte count, got '$SIZE'"

KNOWN="nginx haproxy caddy holdfast"
WANT=()
for t in $TARGETS; do
	[[ " $KNOWN " == *" $t "* ]] || die "unknown target '$t' in TARGETS (known: $KNOWN)"
	[[ " ${WANT[*]-} " == *" $t "* ]] || WANT+=("$t")
done
((${#WANT[@]} > 0)) || die "TARGETS is empty"

bench_traps

# ---------------------------------------------------------------- tools

need=(curl ss)
[[ " ${WANT[*]} " == *" nginx "* ]] && need+=(nginx)
[[ $WARMUP != 0 ]] && need+=(wrk)
command -v go >/dev/null || die "go is needed to build the backend, idleconns and holdfast"
install_cmds "${need[@]}"
((${#UNAVAILABLE[@]} == 0)) || die "not in this machine's Debian repositories: ${UNAVAILABLE[*]}"
for c in "${need[@]}"; do have_cmd "$c" || die "$c still not found after install"; done

SKIPPED=() # "target: reason"
FAILURES=0
MEASURE=()
for t in "${WANT[@]}"; do
	if [[ $t == haproxy || $t == caddy ]] && ! have_cmd "$t"; then
		SKIPPED+=("$t: not installed (bench/run.sh installs it)")
		continue
	fi
	MEASURE+=("$t")
done
((${#MEASURE[@]} > 0)) || die "nothing to measure"

# ---------------------------------------------------------------- limits

# Every process here (proxies, idleconns) inherits this limit. One proxy
# holds IDLE_CONNS client connections plus its upstream ones, and haproxy
# reckons two descriptors per connection: ask for 2 × IDLE_CONNS + 8192, and
# settle for the hard limit when it cannot be raised (that needs
# CAP_SYS_RESOURCE) but still leaves room for IDLE_CONNS + 4096.
NOFILE=$((2 * IDLE_CONNS + 8192))
if (($(ulimit -Hn) < NOFILE)) && ! ulimit -Hn "$NOFILE" 2>/dev/null; then
	hard=$(ulimit -Hn)
	((hard >= IDLE_CONNS + 4096)) ||
		die "the hard open-files limit is $hard and cannot be raised; IDLE_CONNS=$IDLE_CONNS needs at least $((IDLE_CONNS + 4096)): lower IDLE_CONNS"
	log "the hard open-files limit is $hard and cannot be raised to $NOFILE: using $hard"
	NOFILE=$hard
fi
ulimit -Sn "$NOFILE" || die "cannot raise the open-files limit to $NOFILE"
MAXCONN=$((IDLE_CONNS + 1024)) # client connections each proxy is told to accept
log "open-files limit $NOFILE; each proxy accepts up to $MAXCONN client connections"

# ---------------------------------------------------------------- build

WORK=$(mktemp -d "${TMPDIR:-/tmp}/holdfast-idle.XXXXXX")
mkdir -p "$WORK/logs"
log "work dir $WORK"
log "building backend and idleconns"
build_go "$WORK/backend" ./bench/backend || die "building bench/backend failed"
build_go "$WORK/idleconns" ./bench/idleconns || die "building bench/idleconns failed"
if [[ " ${MEASURE[*]} " == *" holdfast "* ]]; then
	if [[ -n $HOLDFAST_BIN ]]; then
		[[ -x $HOLDFAST_BIN ]] || die "HOLDFAST_BIN=$HOLDFAST_BIN is not an executable file"
		cp "$HOLDFAST_BIN" "$WORK/holdfast"
	else
		log "building holdfast"
		build_go "$WORK/holdfast" ./cmd/holdfast || die "building holdfast failed"
	fi
fi

# ---------------------------------------------------------------- backends

mapfile -t PORTS < <("$WORK/backend" -freeports 5)
((${#PORTS[@]} == 5)) || die "could not get 5 free ports from the kernel"
B1=${PORTS[0]}
B2=${PORTS[1]}
PORT=${PORTS[4]} # each proxy in turn
start_backend backend1 "$B1" "${PORTS[2]}" "$SIZE"
start_backend backend2 "$B2" "${PORTS[3]}" "$SIZE"
log "backends on 127.0.0.1:$B1 and 127.0.0.1:$B2"

# ---------------------------------------------------------------- proxies
#
# The configurations of bench/run.sh, with the connection limits raised to
# MAXCONN and the client keep-alive timeouts to 300 s, so that nothing is
# refused or closed while the connections are held. nginx and haproxy run
# one worker / one thread, so that all connections land in one process.

start_nginx() {
	local d="$WORK/nginx" user=""
	mkdir -p "$d/tmp"
	((EUID == 0)) && user="user root;"
	cat >"$d/nginx.conf" <<EOF
$user
worker_processes 1;
worker_rlimit_nofile $NOFILE;
error_log $d/error.log warn;
events {
    worker_connections $MAXCONN;
}
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_timeout 300s;
    upstream bench {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 512;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PORT backlog=4096;
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
	local d="$WORK/haproxy"
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $MAXCONN
    # haproxy wants 2 descriptors per maxconn and by default refuses to
    # start below that; an idle client connection holds only one
    no strict-limits

defaults
    mode http
    maxconn $MAXCONN
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 30s
    timeout http-keep-alive 300s

frontend fe
    bind 127.0.0.1:$PORT
    default_backend be

backend be
    balance roundrobin
    default-server pool-max-conn 512
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
EOF
	haproxy -c -f "$d/haproxy.cfg" >"$WORK/logs/haproxy-check.log" 2>&1 || {
		show_log "$WORK/logs/haproxy-check.log"
		return 1
	}
	start_proc haproxy "$WORK/logs/haproxy.log" haproxy -db -f "$d/haproxy.cfg"
}

start_caddy() {
	local d="$WORK/caddy"
	mkdir -p "$d/config" "$d/data"
	cat >"$d/Caddyfile" <<EOF
{
    admin off
    auto_https off
    log {
        output stderr
        level ERROR
    }
    servers {
        timeouts {
            idle 5m
        }
    }
}

http://127.0.0.1:$PORT {
    reverse_proxy 127.0.0.1:$B1 127.0.0.1:$B2 {
        lb_policy round_robin
        transport http {
            keepalive 60s
            keepalive_idle_conns 1024
            keepalive_idle_conns_per_host 512
        }
    }
}
EOF
	start_proc caddy "$WORK/logs/caddy.log" \
		env HOME="$d" XDG_CONFIG_HOME="$d/config" XDG_DATA_HOME="$d/data" \
		caddy run --config "$d/Caddyfile" --adapter caddyfile
}

start_holdfast() {
	local d="$WORK/holdfast.d"
	mkdir -p "$d"
	cat >"$d/holdfast.yaml" <<EOF
listen:
  - addr: "127.0.0.1:$PORT"
access_log: {path: "off"}
client:
  max_connections: $MAXCONN
  idle_timeout: 300s
routes:
  - match: {path_prefix: /}
    upstream: bench
upstreams:
  bench:
    balance: round_robin
    timeouts: {idle: 60s}
    servers:
      - {url: "http://127.0.0.1:$B1"}
      - {url: "http://127.0.0.1:$B2"}
EOF
	start_proc holdfast "$WORK/logs/holdfast.log" "$WORK/holdfast" serve -c "$d/holdfast.yaml"
}

version_of() {
	case $1 in
	nginx) nginx -v 2>&1 | sed 's/^nginx version: //' ;;
	haproxy) haproxy -v 2>/dev/null | head -n 1 | awk '{print "haproxy " $3}' ;;
	caddy) caddy version 2>/dev/null | awk '{print "caddy " $1}' ;;
	holdfast) echo "holdfast (${HOLDFAST_BIN:-built from this tree})" ;;
	esac
}

# established_to PORT: client connections established to 127.0.0.1:PORT.
established_to() {
	ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l
}

# ---------------------------------------------------------------- measuring

FIFO="$WORK/hold"
mkfifo "$FIFO"
READY_TIMEOUT=$((60 + IDLE_CONNS / 100))

# measure TARGET: sets RESULT to "rss0 rss1 rss2 held open_at_close" (KiB,
# KiB, KiB, connections, connections) or returns 1. The proxy is stopped
# at the end either way.
RESULT=""
measure() {
	local t=$1 pid out err deadline rss0 rss1 rss2 held openc ok=1
	RESULT=""
	LAST_PID=""
	if ! "start_$t" || ! wait_ready "$t" "$LAST_PID" "$PORT" "$WORK/logs/$t.log"; then
		if [[ -n $LAST_PID ]]; then
			stop_proc "$LAST_PID" "$t"
			forget_proc "$LAST_PID"
		fi
		return 1
	fi
	pid=$LAST_PID
	if [[ $WARMUP != 0 ]]; then
		wrk -t1 -c16 -d"$WARMUP" "http://127.0.0.1:$PORT/" >"$WORK/logs/warmup-$t.txt" 2>&1 &
		LOAD_PID=$!
		wait "$LOAD_PID" || log "warm-up of $t failed (see $WORK/logs/warmup-$t.txt)"
		LOAD_PID=""
	fi
	nap 1
	rss0=$(rss_kib_of "$pid")

	out="$WORK/logs/idleconns-$t.out"
	err="$WORK/logs/idleconns-$t.err"
	"$WORK/idleconns" -addr "127.0.0.1:$PORT" -n "$IDLE_CONNS" <"$FIFO" >"$out" 2>"$err" &
	LOAD_PID=$!
	exec 3>"$FIFO" # idleconns holds the connections until this closes
	deadline=$((SECONDS + READY_TIMEOUT))
	until grep -q '^ready ' "$out"; do
		if ! proc_alive "$LOAD_PID"; then
			log "idleconns failed against $t:"
			show_log "$err"
			ok=0
			break
		fi
		if ((SECONDS >= deadline)); then
			log "idleconns did not open $IDLE_CONNS connections to $t within ${READY_TIMEOUT}s"
			show_log "$err"
			ok=0
			break
		fi
		sleep 0.2
	done
	if ((ok == 1)); then
		log "$t: $(grep -m1 'open and answered' "$err" | sed 's/^idleconns: //')"
		nap "$SETTLE"
		rss1=$(rss_kib_of "$pid")
		held=$(established_to "$PORT")
	fi
	exec 3>&- # end of input: idleconns checks, closes all and exits
	deadline=$((SECONDS + 30))
	while proc_alive "$LOAD_PID" && ((SECONDS < deadline)); do sleep 0.1; done
	stop_load
	if ((ok == 1)); then
		openc=$(awk '/^open / {print $2}' "$out")
		if [[ -z $openc ]]; then
			log "idleconns did not report how many connections were still open"
			show_log "$err"
			ok=0
		fi
	fi
	if ((ok == 1)); then
		nap "$AFTER"
		rss2=$(rss_kib_of "$pid")
		RESULT="$rss0 $rss1 $rss2 $held $openc"
	fi
	if ! proc_alive "$pid"; then
		log "$t died during the measurement"
		show_log "$WORK/logs/$t.log"
		ok=0
	fi
	stop_proc "$pid" "$t"
	forget_proc "$pid"
	((ok == 1))
}

declare -A RES=()
for t in "${MEASURE[@]}"; do
	log "$t: $IDLE_CONNS idle connections"
	if measure "$t"; then
		RES[$t]=$RESULT
		read -r r0 r1 r2 held openc <<<"$RESULT"
		log "$(printf '  %-8s RSS %.1f MiB before, %.1f MiB with %s connections open (%s established), %.1f MiB %ss after closing; %s of them open at close' \
			"$t" "$(awk -v k="$r0" 'BEGIN {print k / 1024}')" "$(awk -v k="$r1" 'BEGIN {print k / 1024}')" "$IDLE_CONNS" "$held" \
			"$(awk -v k="$r2" 'BEGIN {print k / 1024}')" "$AFTER" "$openc")"
	else
		SKIPPED+=("$t: measurement failed (see the log on stderr)")
		FAILURES=$((FAILURES + 1))
	fi
done

# ---------------------------------------------------------------- report

# per_conn TARGET: (RSS with the connections - RSS before) / IDLE_CONNS, bytes
per_conn() {
	local r0 r1
	read -r r0 r1 _ <<<"${RES[$1]}"
	awk -v a="$r0" -v b="$r1" -v n="$IDLE_CONNS" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}'
}

report() {
	local t r0 r1 r2 held openc pc nginx_pc=""
	[[ -n ${RES[nginx]-} ]] && nginx_pc=$(per_conn nginx)
	echo "# idle keep-alive connections"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)."
	echo
	echo "$IDLE_CONNS client connections to each proxy in turn (bench/idleconns), each after one GET / answered with a $SIZE-byte body from 2 backends;" \
		"warm-up $WARMUP (wrk -c16) before the first reading; RSS is VmRSS summed over the proxy's processes: before the connections," \
		"${SETTLE}s after the last was answered, and ${AFTER}s after all were closed. nginx worker_processes 1, haproxy nbthread 1." \
		"Kernel socket buffers are not in RSS."
	echo
	echo "| target | bytes per idle conn | vs nginx | RSS before MiB | RSS with conns MiB | RSS ${AFTER}s after close MiB | established | open at close | version |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
	for t in "${MEASURE[@]}"; do
		[[ -n ${RES[$t]-} ]] || continue
		read -r r0 r1 r2 held openc <<<"${RES[$t]}"
		pc=$(per_conn "$t")
		printf '| %s | %s | %s | %.1f | %.1f | %.1f | %s | %s | %s |\n' "$t" "$pc" "$(ratio "$pc" "$nginx_pc")" \
			"$(awk -v k="$r0" 'BEGIN {print k / 1024}')" "$(awk -v k="$r1" 'BEGIN {print k / 1024}')" \
			"$(awk -v k="$r2" 'BEGIN {print k / 1024}')" "$held" "$openc" "$(version_of "$t")"
	done
	for s in "${SKIPPED[@]}"; do
		echo "| ${s%%:*} | - | - | - | - | - | - | - | ${s#*: } |"
	done
	echo
	for t in "${MEASURE[@]}"; do
		[[ -n ${RES[$t]-} ]] || continue
		read -r _ _ _ held openc <<<"${RES[$t]}"
		((held >= IDLE_CONNS)) || echo "- $t: only $held of $IDLE_CONNS connections were established when RSS was read: its figure is not per connection."
		((openc == IDLE_CONNS)) || echo "- $t: closed $((IDLE_CONNS - openc)) of the idle connections before the end."
	done
}

report_text=$(report)
printf '%s\n' "$report_text"
if [[ -n $OUT ]]; then
	mkdir -p "$(dirname "$OUT")"
	printf '%s\n' "$report_text" >"$OUT"
	log "report written to $OUT"
fi
((FAILURES == 0)) || exit 1
exit 0
