#!/usr/bin/env bash
# Installs what the GoNB notebooks under notebooks/ need, idempotently:
#   1. Debian's Jupyter (jupyter-nbconvert, jupyter-client) if /usr/bin/jupyter
#      cannot run nbconvert yet (apt-get; needs root or sudo);
#   2. gonb and goimports, built at the exact versions pinned in tools/go.mod,
#      into $NOTEBOOK_BIN (default tools/bin, ignored by git); gopls too when
#      WITH_GOPLS=1 (optional: completion and hover in the notebook UI);
#   3. the GoNB Jupyter kernel ("gonb --install"), configured with a go.work
#      that uses this repository, so notebooks import the local module.
#
# Run it again after moving the repository: the kernel records both paths.
# Interactive Jupyter needs $NOTEBOOK_BIN on PATH (for goimports);
# scripts/run-notebooks.sh puts it there itself.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${NOTEBOOK_BIN:-$repo/tools/bin}
gopls_version=v0.23.0 # v0.24 needs Go 1.27

log() { printf 'install-notebook-tools: %s\n' "$*" >&2; }

# 1. Jupyter from Debian. The pyenv python3 may shadow Debian's, so check
#    the Debian entry point explicitly.
if /usr/bin/jupyter nbconvert --version >/dev/null 2>&1 &&
	/usr/bin/python3 -c 'import jupyter_client, nbclient' >/dev/null 2>&1; then
	log "Jupyter: $(/usr/bin/jupyter nbconvert --version) already installed"
else
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
	log "installing jupyter-nbconvert jupyter-client with apt-get"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q jupyter-nbconvert jupyter-client
fi

# 2. gonb and goimports at the versions in tools/go.mod (go build is cached,
#    so re-runs are quick).
mkdir -p "$bin"
log "building gonb and goimports into $bin"
(cd "$repo/tools" && go build -o "$bin/" github.com/janpfeifer/gonb golang.org/x/tools/cmd/goimports)
force_deps=--force_deps
if [ "${WITH_GOPLS:-0}" = 1 ]; then
	log "installing gopls $gopls_version into $bin"
	GOBIN="$bin" go install "golang.org/x/tools/gopls@$gopls_version"
	force_deps=
fi
export PATH="$bin:$PATH"

# 3. The kernel: ~/.local/share/jupyter/kernels/gonb/kernel.json (or under
#    $JUPYTER_DATA_DIR), pointing at $bin/gonb with -go_work=$repo.
#    --force_deps: gopls is optional.
log "installing the gonb kernel (go.work uses $repo)"
"$bin/gonb" --install --go_work="$repo" $force_deps --logtostderr 2>&1 | grep -v '^$' >&2 || true
spec=${JUPYTER_DATA_DIR:-$HOME/.local/share/jupyter}/kernels/gonb/kernel.json
if ! grep -q -- "-go_work=$repo" "$spec" 2>/dev/null; then
	log "kernel spec $spec is missing or lacks -go_work=$repo"
	exit 1
fi
log "done: kernel spec $spec"
log "for interactive use: export PATH=\"$bin:\$PATH\""
