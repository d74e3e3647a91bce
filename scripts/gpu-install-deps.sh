#!/usr/bin/env bash
# Install what `go build -tags cuda` / `go vet -tags cuda` of gpu/ need on a
# machine without a GPU: CUDA 11.8's cuda.h and the stub libcuda.so (to link;
# the real driver library is found at run time on the device machine).
#
# Both come from Debian's non-free package nvidia-cuda-dev (CUDA 11.8, the
# version gorgonia.org/cu v0.9.6 builds against; CUDA 13 headers break it).
# Installing that package pulls in ~3 GB of CUDA libraries, so this script
# downloads its .deb (774 MB, ~10 s here) and extracts only the two files
# (~65 s of xz decompression) into $CUDA_STUB_PREFIX (default
# /opt/diffroute-cuda). Idempotent: does nothing when both files are there.
#
# Then build with the environment that `scripts/gpu-install-deps.sh --env`
# prints:
#   eval "$(scripts/gpu-install-deps.sh --env)"
#   go vet -tags cuda ./gpu/...
#
# Regenerating PTX (scripts/gpu-ptx.sh) additionally needs clang-14; pass
# --ptx to install it too.
set -euo pipefail

prefix=${CUDA_STUB_PREFIX:-/opt/diffroute-cuda}
env_only=0 ptx=0
for a in "$@"; do
	case $a in
	--env) env_only=1 ;;
	--ptx) ptx=1 ;;
	*) echo "usage: $0 [--env] [--ptx]" >&2; exit 2 ;;
	esac
done

if ((env_only)); then
	echo "export CGO_CFLAGS=\"-I$prefix/include \${CGO_CFLAGS:-}\""
	echo "export CGO_LDFLAGS=\"-L$prefix/lib \${CGO_LDFLAGS:-}\""
	exit 0
fi

sudo=""
[[ $(id -u) != 0 ]] && sudo=sudo

if [[ -f $prefix/include/cuda.h && -f $prefix/lib/libcuda.so ]]; then
	echo "gpu-install-deps: $prefix already holds cuda.h and libcuda.so"
else
	# Debian's non-free component carries nvidia-cuda-dev.
	if ! apt-cache policy nvidia-cuda-dev 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		src=/etc/apt/sources.list.d/diffroute-nonfree.sources
		. /etc/os-release
		$sudo tee "$src" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		$sudo apt-get update -qq
	fi
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	chmod 777 "$work" # apt's _apt user writes the download
	(cd "$work" && apt-get download -qq nvidia-cuda-dev)
	deb=$(ls "$work"/nvidia-cuda-dev_*.deb)
	echo "gpu-install-deps: extracting cuda.h and stubs/libcuda.so from $(basename "$deb")"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" \
		./usr/include/cuda.h ./usr/lib/x86_64-linux-gnu/stubs/libcuda.so
	$sudo mkdir -p "$prefix/include" "$prefix/lib"
	$sudo cp "$work/usr/include/cuda.h" "$prefix/include/"
	$sudo cp "$work/usr/lib/x86_64-linux-gnu/stubs/libcuda.so" "$prefix/lib/"
	grep -q '#define CUDA_VERSION 11080' "$prefix/include/cuda.h" ||
		echo "gpu-install-deps: warning: $prefix/include/cuda.h is not CUDA 11.8" >&2
	echo "gpu-install-deps: installed $prefix/include/cuda.h and $prefix/lib/libcuda.so"
fi

if ((ptx)) && ! command -v clang-14 >/dev/null; then
	$sudo apt-get install -y -qq clang-14 >/dev/null
	echo "gpu-install-deps: installed clang-14"
fi
