# shellcheck shell=bash
# Shared helpers of the rig scripts: paths, progress output, Debian packages.
# Sourced, never run.

set -euo pipefail

GMEM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GMEM_BUILD=${GMEM_BUILD_DIR:-$GMEM_ROOT/build}
# Both kernel trees have the same shape (<dir>/src, <dir>/out) so that, with
# CCACHE_BASEDIR, a file the series does not touch compiles once for both.
KERNEL_DIR=$GMEM_BUILD/linux
KERNEL_SRC=$KERNEL_DIR/src          # git work tree: base tag + our series
KERNEL_OUT=$KERNEL_DIR/out          # O= build directory of the patched tree
KERNEL_BASE_SRC=$GMEM_BUILD/linux-base/src  # worktree at the base tag
KERNEL_BASE_OUT=$GMEM_BUILD/linux-base/out
KERNEL_EACH_SRC=$GMEM_BUILD/linux-each/src  # worktree for patch-by-patch builds
KERNEL_EACH_OUT=$GMEM_BUILD/linux-each/out
KERNEL_PRISTINE=$GMEM_BUILD/linux-pristine  # the tarball as a git repo
KERNEL_TARBALL=${GMEM_KERNEL_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
PATCH_DIR=${GMEM_PATCH_DIR:-$GMEM_ROOT/kernel-patches}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_BASEDIR=$GMEM_BUILD
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}

# The packages every part of the rig needs; scripts ask for subsets.
RIG_PACKAGES=(linux-source-6.12 qemu-system-x86 busybox-static ccache flex
	bison bc libelf-dev libssl-dev cpio cmake libgtest-dev libgmock-dev
	hipcc libamdhip64-dev libhsakmt-dev make gcc g++ git xz-utils python3
	perl kmod file)

step() { printf '==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ensure_packages PKG...: install the Debian packages that are missing.
# Idempotent: nothing is downloaded when everything is installed.
ensure_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages; run as root or: sudo apt-get install ${missing[*]}"
	fi
	step "installing Debian packages: ${missing[*]}"
	local stamp=/var/lib/apt/periodic/gmem-rig-update
	if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
		apt-get update -qq || die "apt-get update failed; check the network or the apt sources"
		mkdir -p "$(dirname "$stamp")" && touch "$stamp"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >"$GMEM_BUILD/apt.log" 2>&1 ||
		{ tail -n 20 "$GMEM_BUILD/apt.log" >&2
		  die "apt-get install failed for: ${missing[*]} (log: $GMEM_BUILD/apt.log)"; }
}

# Extra packages parts of the tree ask for (one name per line).
extra_packages() {
	cat "$GMEM_ROOT"/*/DEBIAN_PACKAGES "$GMEM_ROOT"/*/*/DEBIAN_PACKAGES 2>/dev/null |
		sed 's/#.*//' | awk 'NF' | sort -u
}

ensure_all_packages() {
	mkdir -p "$GMEM_BUILD"
	local extra
	mapfile -t extra < <(extra_packages)
	ensure_packages "${RIG_PACKAGES[@]}" "${extra[@]}"
}

# Seconds since the epoch, for step timings.
now() { date +%s; }

# The exact version of the kernel in the tarball, e.g. 6.12.117.
kernel_base_version() {
	local v
	v=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) ||
		die "linux-source-6.12 is not installed"
	echo "${v%%-*}"
}
