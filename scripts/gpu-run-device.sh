#!/usr/bin/env bash
# Build the CUDA test/benchmark binary here (no GPU needed), run it on a
# machine with an NVIDIA GPU (driver only: no Go, no CUDA SDK needed there).
#
#   scripts/gpu-run-device.sh build   # here: bin/gpu/gpu.test (needs scripts/gpu-install-deps.sh)
#   scripts/gpu-run-device.sh run     # on the device, from the repository root
#
# `run` executes the GPU tests (GPU vs CPU kernel method on random synthetic
# networks, rapid_xx9 vs the CPU and RAPID's Qout, out-of-memory message;
# the backward pass: the device's ∂L/∂runoff vs a pair loop and vs the CPU
# kernel method's RouteGrad, its ∂L/∂ taps (dr_tapgrad) and the parameter
# gradients chained from them vs the CPU's) and then the benchmarks: the convolution
# (GFLOP/s and the fraction of the roofline, see gpu.RouteStats.Roofline),
# its adjoint (BenchmarkGPUBackward: the same figures and its time against
# the forward convolution's in the same run), the device build of a Hayami
# kernel (pairs/s), and the CLI on rapid_xx9 with --device cuda against
# --device cpu. Benchmark sizes:
#   GPU_BENCH_ARGS="-gpu.n=50000 -gpu.taps=64 -gpu.T=4096 -gpu.B=2"
# To try the whole script here without a GPU, on the emulated device:
#   GPU_TAGS=cudaemu scripts/gpu-run-device.sh build
#   GPU_BENCH_ARGS="-gpu.n=500 -gpu.T=64" scripts/gpu-run-device.sh run
set -euo pipefail
cd "$(dirname "$0")/.."
out=bin/gpu

tags=${GPU_TAGS:-cuda}

case ${1:-} in
build)
	# GPU_TAGS=cudaemu builds the same binaries against the emulated device
	# (gpu/internal/cu), to try this script without a GPU.
	if [[ $tags == cuda ]]; then
		eval "$(scripts/gpu-install-deps.sh --env)"
		if [[ ! -f ${CUDA_STUB_PREFIX:-/opt/diffroute-cuda}/include/cuda.h ]]; then
			echo "gpu-run-device: run scripts/gpu-install-deps.sh first" >&2
			exit 1
		fi
	fi
	mkdir -p "$out"
	go test -tags "$tags" -c -o "$out/gpu.test" ./gpu/
	go build -tags "$tags" -o "$out/diffroute" ./cmd/diffroute
	echo "gpu-run-device: built $out/gpu.test and $out/diffroute; on the device run: scripts/gpu-run-device.sh run"
	;;
run)
	if [[ ! -x $out/gpu.test ]]; then
		echo "gpu-run-device: $out/gpu.test missing: run 'scripts/gpu-run-device.sh build' first" >&2
		exit 1
	fi
	command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
	export DIFFROUTE_XX9=${DIFFROUTE_XX9:-$PWD/testdata/rapid_xx9}
	"$out/gpu.test" -test.v -test.run 'Test' -test.count=1
	# The backward pass once more, on its own, so that its verdict is the
	# last thing the log says about it.
	"$out/gpu.test" -test.run 'TestGPUBackward|TestGPURouteGrad|TestGPUKernelTapGrad' -test.count=1
	# shellcheck disable=SC2086
	"$out/gpu.test" -test.run '^$' -test.bench 'GPUConv|GPUBackward|GPUSpectralBuild' -test.benchtime 5x ${GPU_BENCH_ARGS:-}
	# The CLI end to end on RAPID's basin: --device cuda against the CPU kernel method.
	if [[ -x $out/diffroute ]]; then
		tmp=$(mktemp -d)
		for dev in cpu cuda; do
			"$out/diffroute" route --rapid testdata/rapid_xx9 \
				--runoff testdata/rapid_xx9/m3_riv.csv --runoff-units m3 --step 10800 --substep 900 \
				--method kernel --max-delay 16 --device $dev --out "$tmp/$dev.csv"
		done
		# Largest difference relative to the peak (awk: the device has no Go).
		awk -F, 'FNR == 1 { next }
			NR == FNR { for (i = 2; i <= NF; i++) v[FNR, i] = $i; next }
			{ for (i = 2; i <= NF; i++) { a = v[FNR, i]; d = a - $i; if (d < 0) d = -d; if (a < 0) a = -a
				if (d > worst) worst = d; if (a > peak) peak = a } }
			END { r = peak > 0 ? worst / peak : worst
				printf "CLI on rapid_xx9: --device cuda vs cpu, %.2g of peak%s\n", r, r <= 1e-5 ? "" : " (over 1e-5)"
				exit r <= 1e-5 ? 0 : 1 }' "$tmp/cpu.csv" "$tmp/cuda.csv"
	fi
	;;
*)
	echo "usage: $0 build|run" >&2
	exit 2
	;;
esac
