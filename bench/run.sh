#!/usr/bin/env bash
# `make bench`: kaopu's registrar against Kamailio 5.6, then kaopu's memory
# with 100,000 bindings. See bench/README.md.
#
#   make bench                      # what the Makefile runs: build, then this
#   bash bench/run.sh [regbench flags]   e.g. -servers kamailio -step-seconds 5
#   bash bench/run.sh --calls-only       only the call bench (calls/s, kaopu vs
#                                        Kamailio as a stateful proxy)
#   bash bench/run.sh --no-calls [...]   only the registrar bench
#   CALL_ARGS='-rates 100,200 -quiet-wait 0' bash bench/run.sh --calls-only
#                                        flags for the call bench (regbench calls)
#   bash bench/run.sh --trunk-only       only the trunk bench (issue 6: calls/s
#                                        extension to extension and through a
#                                        rated trunk route, in one run; billing
#                                        Start p99); it also runs in a full run
#   TRUNK_ARGS='-rates 200,400 -quiet-wait 0' bash bench/run.sh --trunk-only
#                                        flags for it (regbench trunk)
#   bash bench/run.sh --relay-only       only the media-relay bench (RTP through
#                                        N calls: kaopu vs rtpengine, baseline)
#   bash bench/run.sh --no-relay [...]   everything but the media-relay bench
#   RELAY_ARGS='-calls 100,400 -window 5s' bash bench/run.sh --relay-only
#                                        flags for the relay bench (relaybench)
#   RELAY_ARGS='-targets baseline,kaopu,kaopu-srtp' bash bench/run.sh --relay-only
#                                        SRTP relay (SRTP to SRTP, re-keyed) vs
#                                        plain RTP relay, CPU per packet
#   bash bench/run.sh --phone-only       only the kaopu phone bench (issue 4:
#                                        mouth-to-ear delay and CPU of a call);
#                                        it also runs after a full run (not with
#                                        --calls-only, --no-calls or --relay-only)
#   PHONE_ARGS='-calls 2' bash bench/run.sh --phone-only
#                                        flags for it (bench/cmd/phonebench)
#   bash bench/run.sh --tls-only         only kaopu's registrations over TLS
#                                        (persistent connections) vs UDP, in
#                                        one run; appends to results.txt
#   bash bench/run.sh --flood-only       only the flood bench (issue 5: legit
#                                        registrations under a 20,000/s flood
#                                        of malformed and unauthenticated
#                                        traffic); it also runs last in a full
#                                        run
#   FLOOD_ARGS='-rate 10000' bash bench/run.sh --flood-only
#                                        flags for it (bench/cmd/floodbench)
#
# Installs missing peers (sipp, kamailio + SQLite module, sqlite3,
# rtpengine-daemon) with apt,
# builds the Go driver (bench/cmd/regbench) and runs it. Figures go to stdout
# (one "name value" line each) and to bench/out/results.txt; per-step numbers
# to bench/out/steps.csv; server and sipp logs to bench/out/logs/.
# Everything runs under a temp dir on 127.0.0.1; every process started is
# stopped by its process id at the end, also on failure or Ctrl-C.
set -euo pipefail

# ---- kaopu phone (issue 4): its flags, taken out before the others ---------
RUN_PHONE=1
PHONE_ONLY=0
RUN_FLOOD=1
FLOOD_ONLY=0
_args=()
for a in "$@"; do
	case "$a" in
	--phone-only) PHONE_ONLY=1 ;;
	--flood-only) FLOOD_ONLY=1 RUN_PHONE=0 && _args+=("$a") ;;
	--calls-only | --no-calls | --relay-only | --tls-only | --trunk-only) RUN_PHONE=0 RUN_FLOOD=0 && _args+=("$a") ;;
	*) _args+=("$a") ;;
	esac
done
set -- ${_args[@]+"${_args[@]}"}
read -r -a PHONE_ARGS_A <<<"${PHONE_ARGS:-}"
read -r -a FLOOD_ARGS_A <<<"${FLOOD_ARGS:-}"
# -----------------------------------------------------------------------------

RUN_REG=1
RUN_CALLS=1
RUN_RELAY=1
RUN_TRUNK=1
TLS_ONLY=0
REG_ARGS=()
for a in "$@"; do
	case "$a" in
	--tls-only) TLS_ONLY=1 RUN_CALLS=0 RUN_RELAY=0 RUN_TRUNK=0 && REG_ARGS+=(-tls-only) ;;
	--calls-only) RUN_REG=0 RUN_RELAY=0 RUN_TRUNK=0 ;;
	--no-calls) RUN_CALLS=0 RUN_RELAY=0 RUN_TRUNK=0 ;;
	--relay-only) RUN_REG=0 RUN_CALLS=0 RUN_TRUNK=0 ;;
	--trunk-only) RUN_REG=0 RUN_CALLS=0 RUN_RELAY=0 ;;
	--flood-only) RUN_REG=0 RUN_CALLS=0 RUN_RELAY=0 RUN_TRUNK=0 ;;
	--no-relay) RUN_RELAY=0 ;;
	*) REG_ARGS+=("$a") ;;
	esac
done
read -r -a CALL_ARGS_A <<<"${CALL_ARGS:-}"
read -r -a RELAY_ARGS_A <<<"${RELAY_ARGS:-}"
read -r -a TRUNK_ARGS_A <<<"${TRUNK_ARGS:-}"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
: "${KAOPU_BIN:=$ROOT/bin/kaopu}"
export KAOPU_BIN

# ---- peers, idempotent ------------------------------------------------------
missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if { [ "$RUN_REG" = 1 ] && [ "$TLS_ONLY" = 0 ]; } || [ "$RUN_CALLS" = 1 ]; then
	command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
	command -v kamailio >/dev/null 2>&1 || missing+=(kamailio)
	have_pkg kamailio-sqlite-modules || missing+=(kamailio-sqlite-modules)
	command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
fi
if [ "$RUN_TRUNK" = 1 ]; then
	# sipp plays the callers, the callee and the carrier; sqlite3 attaches
	# the callers to their accounts and reads the call records.
	command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
	command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
fi
if [ "$RUN_RELAY" = 1 ]; then
	command -v rtpengine >/dev/null 2>&1 || missing+=(rtpengine-daemon)
fi
if ((${#missing[@]})); then
	echo "bench: installing ${missing[*]}" >&2
	SUDO=()
	[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# The kamailio and rtpengine-daemon packages try to start their system
	# services; the bench never uses them (it runs its own instances in the
	# foreground, on its own ports). Where no policy-rc.d says otherwise,
	# one is put in place for the install only, so that nothing starts.
	POLICY=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\n# kaopu bench/run.sh: no service starts during this install\nexit 101\n' |
			"${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
		"${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
		POLICY=1
	fi
	irc=0
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || irc=$?
	[ -z "$POLICY" ] || "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
	[ "$irc" -eq 0 ] || exit "$irc"
fi

if [ ! -x "$KAOPU_BIN" ]; then
	echo "bench: $KAOPU_BIN missing; run 'make bench' (it builds it first)" >&2
	exit 1
fi

# ---- scratch dir and cleanup --------------------------------------------------
TMP=$(mktemp -d /tmp/kaopu-bench.XXXXXX)
DRIVER=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
		kill -TERM "$DRIVER" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$DRIVER" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$DRIVER" 2>/dev/null || true
	fi
	# Backstop: the driver stops what it started; if it was killed, stop the
	# process groups it recorded -- only those whose command line names $TMP.
	if [ -f "$TMP/pids" ]; then
		while read -r pid _; do
			if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$TMP"; then
				kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			fi
		done <"$TMP/pids"
	fi
	mkdir -p "$OUT/logs"
	cp -f "$TMP"/*.log "$OUT/logs/" 2>/dev/null || true
	for d in "$TMP"/sipp/*/ "$TMP"/calls/sipp/*/ "$TMP"/trunk/sipp/*/; do
		[ -d "$d" ] || continue
		n=$(basename "$d")
		cp -f "$d/screen.log" "$OUT/logs/sipp-$n-screen.log" 2>/dev/null || true
		cp -f "$d/stat.csv" "$OUT/logs/sipp-$n-stat.csv" 2>/dev/null || true
		[ -s "$d/errors.log" ] && head -c 200000 "$d/errors.log" >"$OUT/logs/sipp-$n-errors.log" 2>/dev/null || true
	done
	for f in "$TMP"/calls/*.log; do
		[ -f "$f" ] && cp -f "$f" "$OUT/logs/calls-$(basename "$f")" 2>/dev/null || true
	done
	for f in "$TMP"/trunk/*.log; do
		[ -f "$f" ] && cp -f "$f" "$OUT/logs/trunk-$(basename "$f")" 2>/dev/null || true
	done
	for f in "$TMP"/relay/*.log; do
		[ -f "$f" ] && cp -f "$f" "$OUT/logs/relay-$(basename "$f")" 2>/dev/null || true
	done
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "bench: scratch dir kept: $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- kaopu phone (issue 4) ----------------------------------------------------
# Two `kaopu phone` processes in direct calls on 127.0.0.1: mouth-to-ear delay
# and CPU per call. Appends to results.txt; per-call and per-event lines in
# phone-calls.csv and phone-events.csv; the phones' logs in logs/phone-*.
run_phone() {
	local prc=0
	mkdir -p "$OUT/logs"
	rm -f "$OUT"/phone-*.csv "$OUT"/logs/phone-*
	go build -o "$TMP/phonebench" ./bench/cmd/phonebench
	"$TMP/phonebench" -tmp "$TMP" -out "$OUT" -kaopu "$KAOPU_BIN" ${PHONE_ARGS_A[@]+"${PHONE_ARGS_A[@]}"} &
	DRIVER=$!
	wait "$DRIVER" || prc=$?
	DRIVER=
	for f in "$TMP"/phone/*.log; do
		[ -f "$f" ] && cp -f "$f" "$OUT/logs/phone-$(basename "$f")"
	done
	return "$prc"
}
if [ "$PHONE_ONLY" = 1 ]; then
	run_phone
	exit $?
fi

# ---- flood (issue 5) ------------------------------------------------------------
# kaopu under a flood of malformed and unauthenticated datagrams and half-open
# TCP connections from many loopback addresses, while legitimate phones keep
# registering. Appends to results.txt; the server's log in logs/flood-kaopu.log.
run_flood() {
	local frc=0
	mkdir -p "$OUT/logs"
	go build -o "$TMP/floodbench" ./bench/cmd/floodbench
	"$TMP/floodbench" -tmp "$TMP" -out "$OUT" -kaopu "$KAOPU_BIN" ${FLOOD_ARGS_A[@]+"${FLOOD_ARGS_A[@]}"} &
	DRIVER=$!
	wait "$DRIVER" || frc=$?
	DRIVER=
	[ -f "$TMP/flood/kaopu.log" ] && tail -c 2000000 "$TMP/flood/kaopu.log" >"$OUT/logs/flood-kaopu.log" || true
	return "$frc"
}
if [ "$FLOOD_ONLY" = 1 ]; then
	run_flood
	exit $?
fi
# -----------------------------------------------------------------------------

if [ "$TLS_ONLY" = 1 ]; then
	: # keeps the other figures; results.txt is appended to
elif [ "$RUN_REG" = 1 ]; then
	rm -rf "$OUT"
else
	# --calls-only and --relay-only keep the other figures; results.txt is
	# appended to.
	[ "$RUN_CALLS" = 0 ] || rm -f "$OUT/calls-steps.csv" "$OUT"/logs/sipp-calls-* "$OUT"/logs/calls-*
	[ "$RUN_RELAY" = 0 ] || rm -f "$OUT/relay-steps.csv" "$OUT"/logs/relay-*
	[ "$RUN_TRUNK" = 0 ] || rm -f "$OUT/trunk-steps.csv" "$OUT"/logs/sipp-calls-ext-* "$OUT"/logs/sipp-calls-trunk_rated-* "$OUT"/logs/sipp-ext-* "$OUT"/logs/sipp-trunk_rated-* "$OUT"/logs/trunk-*
fi
mkdir -p "$OUT/logs"
go build -o "$TMP/regbench" ./bench/cmd/regbench
[ "$RUN_RELAY" = 0 ] || go build -o "$TMP/relaybench" ./bench/cmd/relaybench
rc=0
if [ "$RUN_REG" = 1 ]; then
	"$TMP/regbench" -tmp "$TMP" -out "$OUT" -kaopu "$KAOPU_BIN" ${REG_ARGS[@]+"${REG_ARGS[@]}"} &
	DRIVER=$!
	wait "$DRIVER" || rc=$?
	DRIVER=
fi
if [ "$RUN_CALLS" = 1 ]; then
	# Calls per second: kaopu (media anchored) vs Kamailio as a stateful
	# proxy; appends to results.txt, steps in calls-steps.csv.
	"$TMP/regbench" calls -tmp "$TMP" -out "$OUT" -kaopu "$KAOPU_BIN" ${CALL_ARGS_A[@]+"${CALL_ARGS_A[@]}"} &
	DRIVER=$!
	wait "$DRIVER" || rc=$?
	DRIVER=
fi
if [ "$RUN_TRUNK" = 1 ]; then
	# Calls/s extension to extension and through a rated trunk route (issue
	# 6), in one run, with billing Start's p99; appends to results.txt,
	# steps in trunk-steps.csv.
	"$TMP/regbench" trunk -tmp "$TMP" -out "$OUT" -kaopu "$KAOPU_BIN" ${TRUNK_ARGS_A[@]+"${TRUNK_ARGS_A[@]}"} &
	DRIVER=$!
	wait "$DRIVER" || rc=$?
	DRIVER=
fi
if [ "$RUN_RELAY" = 1 ]; then
	# Media relay: RTP through N calls with no relay (baseline), through
	# kaopu (calls over SIP) and through rtpengine (ng protocol); appends to
	# results.txt, steps in relay-steps.csv.
	"$TMP/relaybench" -tmp "$TMP" -out "$OUT" -kaopu "$KAOPU_BIN" ${RELAY_ARGS_A[@]+"${RELAY_ARGS_A[@]}"} &
	DRIVER=$!
	wait "$DRIVER" || rc=$?
	DRIVER=
	# The relay's own Go benchmark: allocations per relayed packet.
	allocs=$(go test -run '^$' -bench '^BenchmarkRelay$' -benchtime 20000x ./internal/media 2>/dev/null |
		awk '/^BenchmarkRelay/ { for (i = 1; i < NF; i++) if ($(i+1) == "allocs/op") print $i }')
	echo "relay.kaopu.go_bench_allocs_per_packet ${allocs:-n/a}" | tee -a "$OUT/results.txt"
	# The same with SRTP on both legs (decrypt, re-encrypt with the other
	# leg's key).
	allocs=$(go test -run '^$' -bench '^BenchmarkRelaySRTP$/^AES_CM_128_HMAC_SHA1_80-AES_CM_128_HMAC_SHA1_80$' -benchtime 20000x ./internal/media 2>/dev/null |
		awk '/^BenchmarkRelaySRTP/ { for (i = 1; i < NF; i++) if ($(i+1) == "allocs/op") print $i }')
	echo "relay.kaopu-srtp.go_bench_allocs_per_packet ${allocs:-n/a}" | tee -a "$OUT/results.txt"
fi
# kaopu phone (issue 4), after the other parts of a full run.
if [ "$RUN_PHONE" = 1 ]; then
	run_phone || rc=$?
fi
if [ "$RUN_FLOOD" = 1 ]; then
	run_flood || rc=$?
fi
exit "$rc"
