# diffroute-go — the two commands of the README:
#   make demo   routes the bundled basin, writes discharge and a chart to out/
#   make test   runs every test (installs what it needs first)
SHELL := /bin/bash
GO ?= go
APT_PKGS := libnetcdf-dev pkg-config netcdf-bin
# python3-xarray and python3-netcdf4 read our netCDF-4 output in the tests;
# npm installs DuckDB's node client (scripts/duckdb-install.sh) that queries
# our Parquet output.
TEST_APT_PKGS := $(APT_PKGS) chromium python3-xarray python3-netcdf4
export PATH := $(CURDIR)/tools/bin:$(PATH)

.PHONY: all demo test deps test-deps slurm-deps apt build vet unit fuzz bench notebooks gpu-deps gpu-vet gpu-emu race gpu-ptx gpu-device-build clean test-tools test-tools-vet

all: build

# System packages for cgo (netCDF); tests also need chromium for the chart
# screenshot test. Installs only what is missing.
deps:
	@$(MAKE) --no-print-directory apt PKGS="$(APT_PKGS)"

test-deps: slurm-deps
	@$(MAKE) --no-print-directory apt PKGS="$(TEST_APT_PKGS)"
	@command -v npm >/dev/null || $(MAKE) --no-print-directory apt PKGS="nodejs npm"
	@scripts/duckdb-install.sh >/dev/null || echo "DuckDB's node client could not be installed: the Parquet query test will skip"

# munge and Slurm (without recommends) for the multi-basin tests, which
# start a one-node cluster with scripts/slurm-local.sh.
slurm-deps:
	@scripts/slurm-local.sh install || echo "Slurm could not be installed: the Slurm tests will skip"

apt:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(GO) build -o bin/diffroute ./cmd/diffroute

demo: build
	./bin/diffroute demo --out out/demo

vet: deps
	$(GO) vet ./...

# The quick loop: vet and every Go test (about 5 minutes on two cores).
unit: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# What the later parts of `make test` need, downloaded and built while the Go
# tests run (network and one core): CUDA headers, clang-14, Jupyter, GoNB.
test-tools:
	scripts/gpu-install-deps.sh --ptx
	scripts/install-notebook-tools.sh

# Short fuzzing passes over every parser (the seeds also run in `unit`).
fuzz: deps
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime 5s $$pkg || exit 1; \
	  done; \
	done

# Executes every notebook headless (installs Jupyter, GoNB and goimports).
notebooks: deps
	scripts/install-notebook-tools.sh
	scripts/run-notebooks.sh

# The CUDA backend (build tag cuda) must compile and link here, without a GPU:
# CUDA 11.8's cuda.h and the stub libcuda.so, extracted from Debian's
# nvidia-cuda-dev. Its kernel arithmetic runs in `unit` through the emulator.
gpu-deps:
	scripts/gpu-install-deps.sh

# gpu-vet compiles the cuda-tagged packages, the GPU test binary and the CLI,
# and checks that the committed PTX matches the .cu sources (clang-14).
gpu-vet: gpu-deps
	scripts/gpu-install-deps.sh --ptx && scripts/gpu-ptx.sh --check
	eval "$$(scripts/gpu-install-deps.sh --env)" && $(GO) vet -tags cuda ./gpu/... ./cmd/... && \
	  $(GO) test -tags cuda -c -o bin/gpu/gpu.test ./gpu/ && \
	  $(GO) build -tags cuda -o bin/gpu/diffroute ./cmd/diffroute

# Regenerates gpu/ptx/*.ptx from gpu/kernels/*.cu (clang-14, no CUDA SDK).
gpu-ptx:
	scripts/gpu-install-deps.sh --ptx && scripts/gpu-ptx.sh

# Builds the GPU test and benchmark binaries to run on a machine with a GPU.
gpu-device-build: gpu-deps
	scripts/gpu-run-device.sh build

# The CUDA backend's own host code (routers, pipelines, staged backend,
# device builds, the CLI's --device cuda) against the emulated device of
# gpu/internal/cu: its device tests run here without a GPU.
gpu-emu: deps
	$(GO) vet -tags cudaemu ./gpu/... ./cmd/...
	$(GO) test -tags cudaemu -count=1 ./gpu/...
	$(GO) test -tags cudaemu -count=1 -run 'CUDAEmulated' ./cmd/...

# The data-race detector over the concurrent code: routers' workers, the
# staged router, downloads, and the GPU backend's device goroutine and
# pipelines on the emulated device. One go test, so that the packages run
# side by side; -short takes smaller cases where a test's arithmetic, not
# its concurrency, makes it slow under -race (the tag only adds gpu's
# emulated device). About 3 minutes on two cores.
race: deps
	$(GO) test -race -short -count=1 -tags cudaemu ./diffroute/ ./data/ ./download/ ./gpu/

# Three at once first: the Go tests leave a core idle about half the time
# (child processes, Slurm, chromium), which the emulated GPU tests and the
# downloads use; then the race run and the notebooks, which keep both busy.
test: test-deps
	@$(MAKE) --no-print-directory -j3 --output-sync=target unit test-tools-vet gpu-emu
	@$(MAKE) --no-print-directory -j2 --output-sync=target race notebooks

# test-tools, then gpu-vet, which needs its CUDA headers and clang-14.
test-tools-vet: test-tools
	@$(MAKE) --no-print-directory gpu-vet

bench: build
	$(GO) test -run XXX -bench . -benchtime 3x ./diffroute/
	./bin/diffroute bench

clean:
	rm -rf bin out

# The side-by-side benchmark with the peers (not part of `make test`): a
# generated 20,000-reach basin routed end to end by diffroute, a plain exact
# loop (bench/refroute) and river-route (RIVER_ROUTE_SRC=its source tree),
# outputs compared, three alternating timed rounds. See scripts/peers.sh.
.PHONY: peers
peers: deps
	scripts/peers.sh
