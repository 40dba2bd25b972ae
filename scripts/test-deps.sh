#!/usr/bin/env bash
# Installs the real peers the end-to-end tests in test/ drive, when missing.
#
#   sipp      (Debian package sip-tester)
#   baresip   (Debian package baresip-core)
#   ip        (iproute2: network namespaces for the NAT tests)
#   iptables  (the NAT tests' MASQUERADE router)
#   tmux      (drives `kaopu phone`'s interactive prompt like a terminal)
#   tshark    (captures on loopback in the SRTP tests; installed without
#             setuid dumpcap, answering wireshark-common's question ahead)
#   gcc, pkg-config and libopus-dev (cgo for the opus- and soundcard-tagged
#             unit tests: libopus, found by pkg-config)
#
# Idempotent: when every tool is present it only checks and exits (well under a
# second). When something is missing it runs `apt-get update` once and installs
# the missing packages, through sudo when not root. If it cannot install, it
# exits non-zero with a loud message; it never skips silently.
set -euo pipefail

# tool:package pairs; add one here when a test needs a new tool.
deps=(
	"sipp:sip-tester"
	"baresip:baresip-core"
	"ip:iproute2"
	"iptables:iptables"
	"tmux:tmux"
	"tshark:tshark"
	"gcc:gcc"
	"pkg-config:pkg-config"
)

# pkg-config module:package pairs, for C libraries cgo links against.
libs=(
	"opus:libopus-dev"
)

missing_pkgs=()
missing_tools=()
for dep in "${deps[@]}"; do
	tool=${dep%%:*}
	pkg=${dep#*:}
	if ! command -v "$tool" >/dev/null 2>&1; then
		missing_tools+=("$tool")
		missing_pkgs+=("$pkg")
	fi
done

for lib in "${libs[@]}"; do
	mod=${lib%%:*}
	pkg=${lib#*:}
	if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "$mod"; then
		missing_tools+=("lib$mod")
		missing_pkgs+=("$pkg")
	fi
done

if [ ${#missing_pkgs[@]} -eq 0 ]; then
	echo "test-deps: all present (${deps[*]%%:*} ${libs[*]%%:*})"
	exit 0
fi

die() {
	echo >&2
	echo "**********************************************************************" >&2
	echo "test-deps: ERROR: $*" >&2
	echo "test-deps: missing tools: ${missing_tools[*]}" >&2
	echo "test-deps: install them with: apt-get install -y ${missing_pkgs[*]}" >&2
	echo "test-deps: the end-to-end tests (go test ./test/...) fail without them." >&2
	echo "**********************************************************************" >&2
	exit 1
}

echo "test-deps: missing ${missing_tools[*]}; installing ${missing_pkgs[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
	die "apt-get not found; this installer only knows Debian/Ubuntu"
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		die "not root and passwordless sudo is not available"
	fi
fi

export DEBIAN_FRONTEND=noninteractive
# wireshark-common asks whether non-root users may capture: no.
if command -v debconf-set-selections >/dev/null 2>&1; then
	echo "wireshark-common wireshark-common/install-setuid boolean false" | "${sudo[@]}" debconf-set-selections ||
		die "debconf-set-selections failed"
fi
"${sudo[@]}" apt-get update || die "apt-get update failed"
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing_pkgs[@]}" ||
	die "apt-get install ${missing_pkgs[*]} failed"

for tool in "${missing_tools[@]}"; do
	case $tool in
	lib*) pkg-config --exists "${tool#lib}" || die "$tool still not found by pkg-config after installing" ;;
	*) command -v "$tool" >/dev/null 2>&1 || die "$tool still not found after installing" ;;
	esac
done
echo "test-deps: installed ${missing_pkgs[*]}"
