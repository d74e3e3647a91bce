#!/usr/bin/env bash
# Regenerate the committed PTX of the GPU kernels from gpu/kernels/*.cu:
#
#   scripts/gpu-ptx.sh           # writes gpu/ptx/diffroute.ptx
#   scripts/gpu-ptx.sh --check   # fails if the committed PTX is stale
#
# Uses Debian's clang (apt-get install clang-14; no CUDA SDK needed: the
# kernels include no CUDA header, dr_device.h spells the few builtins they
# use) or, when CUDA_PTX_COMPILER=nvcc, NVIDIA's nvcc. The PTX targets
# compute capability 8.0 (A100 and newer; the driver JIT-compiles it for the
# device at load time, e.g. sm_90 on an H100).
set -euo pipefail
cd "$(dirname "$0")/.."

src=gpu/kernels/diffroute.cu
out=gpu/ptx/diffroute.ptx
arch=${CUDA_ARCH:-80}
compiler=${CUDA_PTX_COMPILER:-clang}

check=0
[[ ${1:-} == --check ]] && check=1

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

case $compiler in
clang)
	clang=""
	for c in clang-14 clang-16 clang-15 clang; do
		if command -v "$c" >/dev/null; then clang=$c; break; fi
	done
	if [[ -z $clang ]]; then
		echo "gpu-ptx: no clang found; install it with: apt-get install -y clang-14" >&2
		exit 1
	fi
	"$clang" -x cuda --cuda-device-only -S --cuda-gpu-arch="sm_$arch" -nocudainc -nocudalib \
		-O3 -Igpu/kernels "$src" -o "$tmp"
	;;
nvcc)
	nvcc -ptx -arch="compute_$arch" -O3 -Igpu/kernels -x cu "$src" -o "$tmp"
	;;
*)
	echo "gpu-ptx: CUDA_PTX_COMPILER must be clang or nvcc, not $compiler" >&2
	exit 1
	;;
esac

if ((check)); then
	if ! cmp -s "$tmp" "$out"; then
		echo "gpu-ptx: $out is stale: run scripts/gpu-ptx.sh and commit it" >&2
		exit 1
	fi
	echo "gpu-ptx: $out is up to date"
else
	mkdir -p "$(dirname "$out")"
	cp "$tmp" "$out"
	echo "gpu-ptx: wrote $out ($(grep -c '^\.visible \.entry' "$out") kernels, $compiler, sm_$arch)"
fi
