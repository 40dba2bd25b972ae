#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 30s):
# `make fuzz` for a real session, `make fuzz-short` (FUZZTIME=3s) in
# `make test`. Targets in packages with cgo parts (TAGGED_PKGS) that exist
# only under build tags run with TAGS. New crashers land in the package's
# testdata/fuzz and become regression tests for `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-30s}"
# Minimizing each new input can take a minute by default; short runs
# keep it brief.
minimize="${FUZZMINIMIZETIME:-60s}"
tags="${TAGS:-opus,soundcard}"
# One worker process per target: some targets bind fixed loopback ports
# (media's FuzzAcceptRTP), which two workers would fight over, and the
# machine is shared.
workers="${FUZZWORKERS:-1}"
tagged="${TAGGED_PKGS:-./internal/media/... ./internal/ua/... ./internal/cli/...}"
start=$SECONDS
n=0
run() { # pkg target [tags]
	local s=$SECONDS
	if ! go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" -fuzzminimizetime "$minimize" -parallel "$workers" ${3:+-tags "$3"} "$1" >/tmp/fuzz.$$.log 2>&1; then
		# Go's fuzzing engine sometimes reports "context deadline exceeded"
		# when -fuzztime runs out while it talks to its worker (on a busy
		# machine). That is the end of the run, not a finding: a finding
		# always writes its failing input.
		if grep -q 'context deadline exceeded' /tmp/fuzz.$$.log && ! grep -q 'Failing input written' /tmp/fuzz.$$.log &&
			grep -q 'fuzz: elapsed' /tmp/fuzz.$$.log; then
			echo "ok $1 $2 ($((SECONDS - s))s; the engine timed out stopping, no failing input)"
			rm -f /tmp/fuzz.$$.log
			n=$((n + 1))
			return
		fi
		cat /tmp/fuzz.$$.log
		rm -f /tmp/fuzz.$$.log
		echo "FAIL: $1 $2"
		exit 1
	fi
	rm -f /tmp/fuzz.$$.log
	n=$((n + 1))
	echo "ok $1 $2 ($((SECONDS - s))s)"
}
declare -A seen
for pkg in $(go list ./internal/... ./bench/...); do
	for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		seen["$pkg $f"]=1
		run "$pkg" "$f"
	done
done
for pkg in $(go list -tags "$tags" $tagged); do
	for f in $(go test -tags "$tags" -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		[[ -n "${seen["$pkg $f"]:-}" ]] && continue
		run "$pkg" "$f" "$tags"
	done
done
echo "fuzz: $n targets, ${t} each, $((SECONDS - start))s in all"
