#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions reached through "start_$t" and traps
# bench/h2.sh: HTTP/2 over TLS, and TLS handshakes per second, for nginx and
# holdfast (haproxy and caddy on request), with h2load.
#
# Each proxy terminates TLS on its own loopback port, with a self-signed
# certificate made here, in front of the two backends of bench/run.sh
# (plain HTTP/1.1 with keep-alive upstream, round robin). In interleaved
# rounds, each target gets two h2load runs:
#   requests:   h2load -n H2_REQS -c H2_CONNS -m H2_STREAMS: HTTP/2 requests
#               multiplexed over a few long-lived TLS connections (req/s,
#               p50 and p99 from h2load's per-request log);
#   handshakes: HS_CONNS new TLS connections, each carrying one HTTP/2
#               request and then closed, opened HS_BATCH at a time (one
#               h2load -n HS_BATCH -c HS_BATCH -m 1 per batch, as many
#               batches as it takes): handshakes per second over the time
#               h2load itself reports, which leaves out its start-up.
# Each h2load client is a new TLS client with no session to resume, so
# every handshake is a full one. The proxy's CPU time (user + system, from
# /proc) is read around each run. The report (a Markdown table) goes to
# stdout, and also to $OUT when set; progress and errors go to stderr. See
# bench/README.md, "HTTP/2 and TLS".
#
# Usage (from anywhere; needs root the first time, to install h2load):
#   bash bench/h2.sh
#   ROUNDS=1 H2_REQS=20000 HS_CONNS=500 bash bench/h2.sh
#
# Environment variables (defaults in brackets):
#   TARGETS   ["nginx holdfast"]  also haproxy and caddy
#   ROUNDS    [3]      interleaved rounds, order rotated each round
#   H2_REQS   [100000] requests of each HTTP/2 run (h2load -n)
#   H2_CONNS  [64]     TLS connections of each HTTP/2 run (h2load -c)
#   H2_STREAMS [10]    concurrent streams per connection (h2load -m)
#   HS_CONNS  [2000]   new TLS connections of each handshake run
#   HS_BATCH  [100]    of which opened at once (h2load -c)
#   WARMUP    [10000]  unmeasured HTTP/2 requests per target before round 1;
#                      0 = none
#   CERT      [ec]     the certificate's key: ec (ECDSA P-256) or rsa (2048)
#   PIN       [proxy]  proxy = the proxy alone on the first CPU, h2load and
#                      the backends on the last (nginx worker_processes and
#                      haproxy nbthread 1); none = nothing pinned
#   SIZE      [1024]   response body size of the backends, in bytes
#   OTHER_LIMIT [10]   warn when processes the script did not start used
#                      more than this % of the machine's CPU during a
#                      target's runs (median)
#   OUT       []       also write the Markdown report to this file
#   INSTALL   [1]      0 = never run apt-get; fail if a tool is missing
#   HOLDFAST_BIN []    use this holdfast binary instead of building
#                      ./cmd/holdfast from the tree
#
# Exit status: 0 when every requested target was measured, 1 when one was
# skipped or an h2load run failed, or on a fatal error, 130 on Ctrl-C. Every
# process the script starts is stopped on exit, by the PID it recorded, and
# the temporary work dir is removed.
set -euo pipefail

TARGETS=${TARGETS:-"nginx holdfast"}
ROUNDS=${ROUNDS:-3}
H2_REQS=${H2_REQS:-100000}
H2_CONNS=${H2_CONNS:-64}
H2_STREAMS=${H2_STREAMS:-10}
HS_CONNS=${HS_CONNS:-2000}
HS_BATCH=${HS_BATCH:-100}
WARMUP=${WARMUP:-10000}
CERT=${CERT:-ec}
PIN=${PIN:-proxy}
SIZE=${SIZE:-1024}
OTHER_LIMIT=${OTHER_LIMIT:-10}
OUT=${OUT:-}
INSTALL=${INSTALL:-1}
HOLDFAST_BIN=${HOLDFAST_BIN:-}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
if [[ -n $OUT && $OUT != /* ]]; then OUT="$PWD/$OUT"; fi
LOG_TAG=h2
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

for v in ROUNDS H2_REQS H2_CONNS H2_STREAMS HS_CONNS HS_BATCH; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a request count (0 = none), got '$WARMUP'"
[[ $SIZE =~ ^[0-9]+$ ]] || die "SIZE must be a byte count, got '$SIZE'"
[[ $OTHER_LIMIT =~ ^[0-9]+$ ]] || die "OTHER_LIMIT must be a whole percentage, got '$OTHER_LIMIT'"
((H2_REQS >= H2_CONNS)) || die "H2_REQS ($H2_REQS) must be >= H2_CONNS ($H2_CONNS)"
((HS_BATCH <= HS_CONNS)) || die "HS_BATCH ($HS_BATCH) must be <= HS_CONNS ($HS_CONNS)"
case $CERT in ec | rsa) ;; *) die "CERT must be ec or rsa, got '$CERT'" ;; esac
case $PIN in proxy | none) ;; *) die "PIN must be proxy or none, got '$PIN'" ;; esac

KNOWN="nginx haproxy caddy holdfast"
WANT=()
for t in $TARGETS; do
	[[ " $KNOWN " == *" $t "* ]] || die "unknown target '$t' in TARGETS (known: $KNOWN)"
	[[ " ${WANT[*]-} " == *" $t "* ]] || WANT+=("$t")
done
((${#WANT[@]} > 0)) || die "TARGETS is empty"
wants() { [[ " ${WANT[*]} " == *" $1 "* ]]; }
SKIPPED=() # "target: reason"
SKIP_FAILURES=0
skip_target() { # name reason
	local t keep=()
	log "SKIPPING $1: $2"
	SKIPPED+=("$1: $2")
	SKIP_FAILURES=$((SKIP_FAILURES + 1))
	for t in "${WANT[@]}"; do [[ $t == "$1" ]] || keep+=("$t"); done
	WANT=("${keep[@]}")
}

bench_traps

# ---------------------------------------------------------------- tools

need=(curl h2load openssl)
for t in nginx haproxy caddy; do wants "$t" && need+=("$t"); done
command -v go >/dev/null || die "go is needed to build the backend and holdfast"
install_cmds "${need[@]}"
((${#UNAVAILABLE[@]} == 0)) || die "not in this machine's Debian repositories: ${UNAVAILABLE[*]}"
for c in "${need[@]}"; do have_cmd "$c" || die "$c still not found after install"; done

# ---------------------------------------------------------------- CPUs

cpu_list
LOAD_PIN=()  # h2load
PROXY_PIN=() # the proxies
BACKEND_PIN=()
if ((${#CPUS[@]} < 2)) && [[ $PIN != none ]]; then
	log "only one CPU: PIN=$PIN ignored"
	PIN=none
fi
if [[ $PIN == proxy ]]; then
	PROXY_PIN=(taskset -c "${CPUS[0]}")
	LOAD_PIN=(taskset -c "${CPUS[${#CPUS[@]} - 1]}")
	BACKEND_PIN=("${LOAD_PIN[@]}")
	PIN_DESC="proxy: ${PROXY_PIN[*]}, h2load and backends: ${LOAD_PIN[*]}"
else
	PIN_DESC="nothing pinned"
fi
SERVER_NPROC=$("${PROXY_PIN[@]}" nproc)

# ---------------------------------------------------------------- build

WORK=$(mktemp -d "${TMPDIR:-/tmp}/holdfast-h2.XXXXXX")
mkdir -p "$WORK/logs" "$WORK/results"
log "work dir $WORK"
log "building backend"
build_go "$WORK/backend" ./bench/backend || die "building bench/backend failed"
if wants holdfast; then
	if [[ -n $HOLDFAST_BIN ]]; then
		[[ -x $HOLDFAST_BIN ]] || die "HOLDFAST_BIN=$HOLDFAST_BIN is not an executable file"
		cp "$HOLDFAST_BIN" "$WORK/holdfast"
	else
		log "building holdfast"
		build_go "$WORK/holdfast" ./cmd/holdfast || skip_target holdfast "go build ./cmd/holdfast failed (build log shown on stderr)"
	fi
fi
((${#WANT[@]} > 0)) || die "nothing left to measure"

# A self-signed certificate for 127.0.0.1; h2load does not verify it.
CRT="$WORK/cert.pem"
KEY="$WORK/key.pem"
if [[ $CERT == ec ]]; then
	keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
else
	keyopt=(-newkey rsa:2048)
fi
openssl req -x509 "${keyopt[@]}" -nodes -keyout "$KEY" -out "$CRT" -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >"$WORK/logs/openssl.log" 2>&1 || {
	show_log "$WORK/logs/openssl.log"
	die "openssl could not make a certificate"
}
cat "$CRT" "$KEY" >"$WORK/cert+key.pem" # haproxy wants both in one file

# ---------------------------------------------------------------- servers

nports=4
for t in "${WANT[@]}"; do nports=$((nports + 1)); done
mapfile -t PORTS < <("$WORK/backend" -freeports "$nports")
((${#PORTS[@]} == nports)) || die "could not get $nports free ports from the kernel"
B1=${PORTS[0]}
B2=${PORTS[1]}
declare -A PORT_OF=() PID_OF=()
i=4
for t in "${WANT[@]}"; do
	PORT_OF[$t]=${PORTS[i]}
	i=$((i + 1))
done

START_PIN=("${BACKEND_PIN[@]}")
start_backend backend1 "$B1" "${PORTS[2]}" "$SIZE"
start_backend backend2 "$B2" "${PORTS[3]}" "$SIZE"
log "backends on 127.0.0.1:$B1 and 127.0.0.1:$B2 (body $SIZE bytes)"
START_PIN=("${PROXY_PIN[@]}")

start_nginx() {
	local d="$WORK/nginx" port=${PORT_OF[nginx]} user=""
	mkdir -p "$d/tmp"
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
        keepalive 512;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$port ssl http2 backlog=4096;
        ssl_certificate $CRT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3; # 1.22's default stops at TLSv1.2
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

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend fe
    bind 127.0.0.1:$port ssl crt $WORK/cert+key.pem alpn h2,http/1.1
    default_backend be

backend be
    balance roundrobin
    default-server pool-max-conn 512 pool-purge-delay 60s
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

https://127.0.0.1:$port {
    tls $CRT $KEY
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
	local d="$WORK/holdfast.d" port=${PORT_OF[holdfast]}
	mkdir -p "$d"
	cat >"$d/holdfast.yaml" <<EOF
listen:
  - addr: "127.0.0.1:$port"
    tls: {cert: "$CRT", key: "$KEY"}
    http2: true
access_log: {path: "off"}
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

for t in nginx haproxy caddy holdfast; do
	wants "$t" || continue
	log "starting $t on https://127.0.0.1:${PORT_OF[$t]}"
	LAST_PID=""
	if "start_$t" && wait_ready "$t" "$LAST_PID" "${PORT_OF[$t]}" "$WORK/logs/$t.log" https; then
		PID_OF[$t]=$LAST_PID
		continue
	fi
	if [[ -n $LAST_PID ]]; then
		stop_proc "$LAST_PID" "$t"
		forget_proc "$LAST_PID"
	fi
	skip_target "$t" "failed to start (its log was shown on stderr)"
done
((${#WANT[@]} > 0)) || die "no target could be started"

# ---------------------------------------------------------------- measuring

# h2load_run OUTFILE ARGS...: h2load (pinned) in the background, waited for
# so that a signal stops the script at once; returns h2load's status.
h2load_run() {
	local f=$1 rc=0
	shift
	"${LOAD_PIN[@]}" h2load "$@" >"$f" 2>&1 &
	LOAD_PID=$!
	wait "$LOAD_PID" || rc=$?
	LOAD_PID=""
	return "$rc"
}

# parse_h2load FILE: "seconds succeeded failed protocol", or exit 1 when the
# summary is missing. Non-2xx/3xx statuses count as failed, as h2load does.
parse_h2load() {
	awk '
	/^finished in / {
		v = $3; sub(/,$/, "", v); n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") secs = n / 1e6
		else if (u == "ms") secs = n / 1000
		else if (u == "s") secs = n
		else if (u == "m") secs = n * 60
	}
	/^requests: / { for (i = 2; i <= NF; i++) { if ($(i + 1) ~ /^succeeded/) ok = $i; if ($(i + 1) ~ /^failed/) bad = $i } }
	/^Application protocol: / { proto = $3 }
	END {
		if (secs == "" || ok == "") exit 1
		printf "%.6f %d %d %s\n", secs, ok, bad, (proto == "" ? "-" : proto)
	}' "$1"
}

# latency_ms LOGFILE: "p50 p99" in ms from h2load's per-request log (third
# column: µs from the request to the end of its response).
latency_ms() {
	cut -f3 "$1" | sort -n | awk '{a[NR] = $1} END {
		if (NR == 0) { print "0 0"; exit }
		i50 = int(NR * 0.50 + 0.5); i99 = int(NR * 0.99 + 0.5)
		if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
		printf "%.3f %.3f\n", a[i50] / 1000, a[i99] / 1000 }'
}

URL_OF() { echo "https://127.0.0.1:${PORT_OF[$1]}/"; }

# measure_h2 TARGET ROUND: one HTTP/2 run. Appends
# "round req/s p50 p99 cpu_us_per_req failed proto other%" to
# results/TARGET.h2.
measure_h2() {
	local t=$1 r=$2 f c0 c1 m0 m1 o0 o1 other line secs ok bad proto p50 p99
	f="$WORK/logs/h2-$t-$r.txt"
	m0=$(machine_ticks)
	o0=$(our_ticks "$$")
	c0=$(ticks_of "${PID_OF[$t]}")
	if ! h2load_run "$f" -t1 -n "$H2_REQS" -c "$H2_CONNS" -m "$H2_STREAMS" --log-file="$f.log" "$(URL_OF "$t")"; then
		log "h2load (HTTP/2 requests) against $t failed:"
		show_log "$f"
		return 1
	fi
	c1=$(ticks_of "${PID_OF[$t]}")
	o1=$(our_ticks "$$")
	m1=$(machine_ticks)
	other=$(other_pct "$m0" "$m1" "$o0" "$o1")
	line=$(parse_h2load "$f") || {
		log "no h2load summary for $t:"
		show_log "$f"
		return 1
	}
	read -r secs ok bad proto <<<"$line"
	read -r p50 p99 <<<"$(latency_ms "$f.log")"
	rm -f -- "$f.log"
	echo "$r $(awk -v n="$ok" -v s="$secs" 'BEGIN {printf "%.2f", n / s}') $p50 $p99 $(us_per $((c1 - c0)) "$ok") $bad $proto $other" >>"$WORK/results/$t.h2"
	log "$(printf '  %-9s HTTP/2: %9.0f req/s  p50 %7s ms  p99 %7s ms  CPU %6s µs/req  failed %s  (%s)  other CPU %s%%' \
		"$t" "$(awk -v n="$ok" -v s="$secs" 'BEGIN {print n / s}')" "$p50" "$p99" "$(us_per $((c1 - c0)) "$ok")" "$bad" "$proto" "$other")"
}

# measure_hs TARGET ROUND: HS_CONNS new TLS connections in batches of
# HS_BATCH. Appends "round handshakes/s cpu_us_per_conn failed protos
# busy% other%" to results/TARGET.hs.
measure_hs() {
	local t=$1 r=$2 f c0 c1 m0 m1 o0 o1 other line secs ok bad proto busy b left total_s=0 total_ok=0 total_bad=0 protos="" batch=0
	m0=$(machine_ticks)
	o0=$(our_ticks "$$")
	c0=$(ticks_of "${PID_OF[$t]}")
	for ((left = HS_CONNS; left > 0; left -= b)); do
		b=$((left < HS_BATCH ? left : HS_BATCH))
		batch=$((batch + 1))
		f="$WORK/logs/hs-$t-$r-$batch.txt"
		if ! h2load_run "$f" -t1 -n "$b" -c "$b" -m 1 "$(URL_OF "$t")"; then
			log "h2load (handshakes) against $t failed:"
			show_log "$f"
			return 1
		fi
		line=$(parse_h2load "$f") || {
			log "no h2load summary for $t:"
			show_log "$f"
			return 1
		}
		read -r secs ok bad proto <<<"$line"
		total_s=$(awk -v a="$total_s" -v b="$secs" 'BEGIN {printf "%.6f", a + b}')
		total_ok=$((total_ok + ok))
		total_bad=$((total_bad + bad))
		[[ " $protos " == *" $proto "* ]] || protos="${protos:+$protos,}$proto"
		rm -f -- "$f"
	done
	c1=$(ticks_of "${PID_OF[$t]}")
	o1=$(our_ticks "$$")
	m1=$(machine_ticks)
	other=$(other_pct "$m0" "$m1" "$o0" "$o1")
	# busy: the proxy's CPU time over the time h2load ran, in % of one CPU
	busy=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v s="$total_s" 'BEGIN {printf "%.0f", (s > 0) ? 100 * t / hz / s : 0}')
	echo "$r $(awk -v n="$total_ok" -v s="$total_s" 'BEGIN {printf "%.2f", (s > 0) ? n / s : 0}') $(us_per $((c1 - c0)) "$total_ok") $total_bad $protos $busy $other" >>"$WORK/results/$t.hs"
	log "$(printf '  %-9s TLS:    %9.0f handshakes/s  CPU %6s µs/connection  proxy busy %s%% of a CPU  failed %s  (%s batches of up to %s)  other CPU %s%%' \
		"$t" "$(awk -v n="$total_ok" -v s="$total_s" 'BEGIN {print (s > 0) ? n / s : 0}')" "$(us_per $((c1 - c0)) "$total_ok")" "$busy" "$total_bad" "$batch" "$HS_BATCH" "$other")"
}

declare -A TLS_INFO=()
if ((WARMUP > 0)); then
	for t in "${WANT[@]}"; do
		log "warm-up $t ($WARMUP HTTP/2 requests)"
		h2load_run "$WORK/logs/warmup-$t.txt" -t1 -n "$WARMUP" -c "$H2_CONNS" -m "$H2_STREAMS" "$(URL_OF "$t")" ||
			log "warm-up of $t failed (see next runs)"
	done
fi

FAILED_RUNS=()
n=${#WANT[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	order=()
	for ((k = 0; k < n; k++)); do order+=("${WANT[(r - 1 + k) % n]}"); done
	log "round $r/$ROUNDS: ${order[*]}"
	for t in "${order[@]}"; do
		nap 1
		measure_h2 "$t" "$r" || FAILED_RUNS+=("$t HTTP/2 round $r")
		if [[ -z ${TLS_INFO[$t]-} && -f $WORK/logs/h2-$t-$r.txt ]]; then
			TLS_INFO[$t]=$(awk -F': ' '/^TLS Protocol:/ {p = $2} /^Cipher:/ {c = $2} /^Server Temp Key:/ {k = $2} END {if (p != "") print p ", " c ", key exchange " k}' "$WORK/logs/h2-$t-$r.txt")
		fi
		nap 1
		measure_hs "$t" "$r" || FAILED_RUNS+=("$t handshakes round $r")
		proc_alive "${PID_OF[$t]}" || {
			log "$t died during round $r"
			show_log "$WORK/logs/$t.log"
		}
	done
done

# ---------------------------------------------------------------- report

col() { awk -v c="$2" '{print $c}' "$1"; }

declare -A RPS P50 P99 CPU HS HSCPU HSBUSY ERR PROTO OTHER
for t in "${WANT[@]}"; do
	f="$WORK/results/$t.h2"
	if [[ -s $f ]]; then
		RPS[$t]=$(col "$f" 2 | median)
		P50[$t]=$(col "$f" 3 | median)
		P99[$t]=$(col "$f" 4 | median)
		CPU[$t]=$(col "$f" 5 | median)
		ERR[$t]=$(col "$f" 6 | awk '{s += $1} END {print s + 0}')
		PROTO[$t]=$(col "$f" 7 | sort -u | paste -sd, -)
	fi
	f="$WORK/results/$t.hs"
	if [[ -s $f ]]; then
		HS[$t]=$(col "$f" 2 | median)
		HSCPU[$t]=$(col "$f" 3 | median)
		HSBUSY[$t]=$(col "$f" 6 | median)
		ERR[$t]=$((${ERR[$t]:-0} + $(col "$f" 4 | awk '{s += $1} END {print s + 0}')))
	fi
	OTHER[$t]=$({
		[[ -s $WORK/results/$t.h2 ]] && col "$WORK/results/$t.h2" 8
		[[ -s $WORK/results/$t.hs ]] && col "$WORK/results/$t.hs" 7
	} | median)
done

fmt() { # printf FORMAT VALUE, or "-" when VALUE is empty
	# shellcheck disable=SC2059 # the format is the argument
	if [[ -z $2 ]]; then echo "-"; else printf "$1" "$2"; fi
}

report() {
	local t
	echo "# HTTP/2 and TLS"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(h2load --version | head -n 1), $(openssl version | awk '{print $1, $2}')."
	echo
	echo "HTTP/2: h2load -n $H2_REQS -c $H2_CONNS -m $H2_STREAMS over TLS, certificate key $CERT ($([[ $CERT == ec ]] && echo "ECDSA P-256" || echo "RSA 2048"));" \
		"handshakes: $HS_CONNS new TLS connections each carrying one HTTP/2 request, $HS_BATCH at a time;" \
		"$ROUNDS interleaved round(s), medians; body $SIZE bytes from 2 backends (HTTP/1.1 keep-alive, round robin);" \
		"PIN=$PIN ($PIN_DESC); proxies see $SERVER_NPROC CPU(s): nginx worker_processes and haproxy nbthread $SERVER_NPROC."
	echo "CPU is the user + system CPU time of the proxy's processes during a run, per request (HTTP/2) or per connection with its one request (handshakes);" \
		"busy is that CPU time over the time h2load took, in % of one CPU: well below $((SERVER_NPROC * 100))%, the client (or other load), not the proxy, set the handshake rate;" \
		"other CPU % is the median share of the machine's CPU used during the target's runs by processes this script did not start."
	echo
	echo "| target | h2 req/s | p50 ms | p99 ms | CPU µs/req | req/s vs nginx | handshakes/s | CPU µs/conn | busy % | handshakes vs nginx | failed | other CPU % | version |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for t in "${WANT[@]}"; do
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" \
			"$(fmt %.0f "${RPS[$t]-}")" "$(fmt %.3f "${P50[$t]-}")" "$(fmt %.3f "${P99[$t]-}")" "$(fmt %.1f "${CPU[$t]-}")" \
			"$(ratio "${RPS[$t]-}" "${RPS[nginx]-}")" "$(fmt %.0f "${HS[$t]-}")" "$(fmt %.1f "${HSCPU[$t]-}")" "$(fmt %.0f "${HSBUSY[$t]-}")" \
			"$(ratio "${HS[$t]-}" "${HS[nginx]-}")" "${ERR[$t]:-0}" "$(fmt %.1f "${OTHER[$t]-}")" "$(version_of "$t")"
	done
	for s in "${SKIPPED[@]}"; do
		echo "| ${s%%:*} | - | - | - | - | - | - | - | - | - | - | - | ${s#*: } |"
	done
	echo
	((${#FAILED_RUNS[@]} == 0)) || echo "- failed runs (left out of the medians): ${FAILED_RUNS[*]}."
	for t in "${WANT[@]}"; do
		[[ -z ${TLS_INFO[$t]-} ]] || echo "- $t: ${TLS_INFO[$t]}."
		[[ -z ${PROTO[$t]-} || ${PROTO[$t]} == h2 ]] || echo "- $t: h2load negotiated ${PROTO[$t]}, not h2."
		[[ ${ERR[$t]:-0} == 0 ]] || echo "- $t: ${ERR[$t]} failed requests: its figures are not comparable."
		if [[ -n ${OTHER[$t]-} ]] && awk -v x="${OTHER[$t]}" -v l="$OTHER_LIMIT" 'BEGIN {exit !(x > l)}'; then
			echo "- WARNING: $t: other processes used $(printf '%.1f' "${OTHER[$t]}")% of the machine's CPU during its runs (median): its figures measure the neighbours too. Rerun on a quiet machine."
		fi
	done
}

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
