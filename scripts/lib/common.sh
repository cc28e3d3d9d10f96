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
KERNEL_INSTALLED_TARBALL=/usr/src/linux-source-6.12.tar.xz
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

# The linux-source-6.12 package version the series is based on, from
# kernel-patches/BASE (e.g. 6.12.118-1~deb12u1).
kernel_base_deb_version() {
	local v
	v=$(sed 's/#.*//' "$PATCH_DIR/BASE" 2>/dev/null | awk 'NF { print $1; exit }')
	[ -n "$v" ] || die "$PATCH_DIR/BASE names no linux-source-6.12 version"
	echo "$v"
}

# The exact kernel version the series is based on, e.g. 6.12.118.
kernel_base_version() {
	local v
	v=$(kernel_base_deb_version)
	echo "${v%%-*}"
}

# kernel_tarball: the linux-source-6.12 tarball of the base version. The
# installed package serves when it is that version. Debian's security archive
# moves on to new stable releases before the series is rebased onto them, so
# otherwise the base version's package is downloaded (not installed) into
# build/ once; GMEM_KERNEL_TARBALL overrides both.
kernel_tarball() {
	local want have dir deb
	if [ -n "${GMEM_KERNEL_TARBALL:-}" ]; then
		echo "$GMEM_KERNEL_TARBALL"
		return
	fi
	want=$(kernel_base_deb_version)
	have=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || true)
	if [ "$have" = "$want" ]; then
		echo "$KERNEL_INSTALLED_TARBALL"
		return
	fi
	dir=$GMEM_BUILD/linux-source-$want
	if [ ! -f "$dir/linux-source-6.12.tar.xz" ]; then
		step "the series is based on linux-source-6.12 $want; ${have:-no version} is installed: downloading $want into $dir"
		rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
		(cd "$dir.tmp" && apt-get download -q "linux-source-6.12=$want") \
			>"$dir.tmp/download.log" 2>&1 ||
			die "Debian offers no linux-source-6.12=$want any more ($dir.tmp/download.log); rebase the series onto $have as docs/testing.md describes"
		deb=$(ls "$dir.tmp"/linux-source-6.12_*.deb)
		dpkg-deb --fsys-tarfile "$deb" |
			tar -x -O ./usr/src/linux-source-6.12.tar.xz >"$dir.tmp/linux-source-6.12.tar.xz" ||
			die "could not unpack $deb"
		rm -f "$deb"
		rm -rf "$dir" && mv "$dir.tmp" "$dir"
	fi
	echo "$dir/linux-source-6.12.tar.xz"
}
