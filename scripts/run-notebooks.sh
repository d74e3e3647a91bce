#!/usr/bin/env bash
# Executes notebooks headless with the GoNB kernel and checks the results.
#
#   scripts/run-notebooks.sh [notebook.ipynb ...]   (default: notebooks/*.ipynb)
#
# Each notebook runs top to bottom with Debian's
# `/usr/bin/jupyter nbconvert --to notebook --execute` (the pyenv python3 may
# shadow Debian's Jupyter); the sources are left untouched and the executed
# copies, outputs included, are written to $NOTEBOOK_OUT (default
# out/notebooks/, ignored by git) and signed as trusted, so that Jupyter runs
# their chart scripts when they are opened.
#
# A notebook fails when a cell fails (nbconvert stops), when any output is an
# error or stderr mentions a panic, or when a code cell has no output — unless
# the cell is tagged "no-output" (cell metadata tags; for declaration-only
# cells). A cell tagged "expect-html" must produce a text/html output.
#
# Charts get a static PNG snapshot next to their interactive HTML, in the
# same output, so that they show where notebook scripts do not run (code
# hosts): the script sets DIFFROUTE_NOTEBOOK_PNG=1 when chromium is installed
# (see viz.SnapshotEnv; set DIFFROUTE_NOTEBOOK_PNG=0 to leave them out). It
# reports chart outputs without a snapshot but does not fail on them.
#
# With NOTEBOOK_COMMIT=1, each notebook that passes is also written back over
# its source in its light, committed form (scripts/notebook-light.py: charts
# as PNG snapshots only, no ECharts library), so that it shows on GitHub and
# in an untrusted JupyterLab and stays well under 1 MB.
#
# Needs scripts/install-notebook-tools.sh first. $NOTEBOOK_TIMEOUT bounds
# each cell in seconds (default 600).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${NOTEBOOK_BIN:-$repo/tools/bin}
out=${NOTEBOOK_OUT:-$repo/out/notebooks}
timeout=${NOTEBOOK_TIMEOUT:-600}
export PATH="$bin:$PATH" # goimports for the kernel
if [ -z "${DIFFROUTE_NOTEBOOK_PNG:-}" ]; then
	if command -v chromium >/dev/null 2>&1 || [ -n "${CHROMIUM:-}" ]; then
		export DIFFROUTE_NOTEBOOK_PNG=1
	else
		export DIFFROUTE_NOTEBOOK_PNG=0
		echo "run-notebooks: chromium not installed: charts get no PNG snapshots" >&2
	fi
fi

if [ ! -x "$bin/gonb" ] || [ ! -x "$bin/goimports" ]; then
	echo "run-notebooks: $bin/gonb or goimports missing: run scripts/install-notebook-tools.sh" >&2
	exit 1
fi
if [ $# -eq 0 ]; then
	shopt -s nullglob
	set -- "$repo"/notebooks/*.ipynb
	if [ $# -eq 0 ]; then
		echo "run-notebooks: no notebooks under $repo/notebooks" >&2
		exit 1
	fi
fi
mkdir -p "$out"

# A kernel spec of our own, for this checkout: the user-wide one
# (~/.local/share/jupyter/kernels/gonb) points at whichever checkout last ran
# install-notebook-tools.sh. JUPYTER_PATH is searched first.
kernels="$out/.jupyter"
mkdir -p "$kernels/kernels/gonb"
cat >"$kernels/kernels/gonb/kernel.json" <<JSON
{"argv":["$bin/gonb","--kernel","{connection_file}","-logtostderr=true","-raw_error=false","-work=false","-stderrthreshold=2","-v=0","-go_work=$repo"],"display_name":"Go (gonb)","language":"go","interrupt_mode":"message","env":{}}
JSON
export JUPYTER_PATH="$kernels${JUPYTER_PATH:+:$JUPYTER_PATH}"

# GoNB runs `go get` before compiling each cell, which asks the module
# proxy about the notebook's module (1.0-1.4 s a cell, 0.2-0.5 s without):
# with this module's dependencies downloaded first, the kernels need no
# proxy, and a module missing all the same fails the cell saying so.
(cd "$repo" && go mod download)
export GOPROXY=off

failed=0
retry=() # notebooks that ran but lost outputs: run once more (see below)
for nb in "$@"; do
	name=$(basename "$nb")
	echo "=== $name"
	start=$(date +%s)
	if ! /usr/bin/jupyter nbconvert --to notebook --execute \
		--ExecutePreprocessor.kernel_name=gonb \
		--ExecutePreprocessor.timeout="$timeout" \
		--output-dir "$out" --output "$name" "$nb"; then
		echo "FAIL $name: execution failed" >&2
		failed=$((failed + 1))
		continue
	fi
	if /usr/bin/python3 - "$out/$name" <<'PY'; then
import json, os, sys
import nbformat
from nbformat.sign import NotebookNotary

path = sys.argv[1]
with open(path) as f:
    nb = json.load(f)
problems = []
for k, cell in enumerate(nb["cells"]):
    if cell["cell_type"] != "code":
        continue
    tags = cell.get("metadata", {}).get("tags", [])
    outs = cell.get("outputs", [])
    src = "".join(cell["source"]).strip().splitlines()
    where = "cell %d (%s)" % (k, src[0] if src else "empty")
    for o in outs:
        if o["output_type"] == "error":
            problems.append("%s: error output %s: %s" % (where, o.get("ename"), o.get("evalue")))
        if o["output_type"] == "stream" and o.get("name") == "stderr" and "panic:" in "".join(o.get("text", "")):
            problems.append("%s: panic on stderr" % where)
    if not outs and "no-output" not in tags:
        problems.append("%s: no output (tag the cell no-output if that is intended)" % where)
    if "expect-html" in tags and not any("text/html" in o.get("data", {}) for o in outs):
        problems.append("%s: tagged expect-html but has no text/html output" % where)
charts = [(k, o) for k, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
          for o in cell.get("outputs", []) if 'class="viz-block"' in "".join(o.get("data", {}).get("text/html", ""))]
if os.environ.get("DIFFROUTE_NOTEBOOK_PNG", "").lower() in ("1", "t", "true"):
    bare = sorted({k for k, o in charts if "image/png" not in o["data"]})
    print("  %d chart outputs, %d with a PNG snapshot" % (len(charts), len(charts) - len(bare)))
    if bare:
        print("  warning: no PNG snapshot in cells %s" % ", ".join(map(str, bare)), file=sys.stderr)
for p in problems:
    print("  " + p, file=sys.stderr)
if problems:
    sys.exit(1)
# Trust the executed copy so that Jupyter runs its chart scripts.
signed = nbformat.read(path, as_version=4)
NotebookNotary().sign(signed)
PY
		echo "ok   $name ($(($(date +%s) - start))s) -> $out/$name"
		if [ "${NOTEBOOK_COMMIT:-0}" = 1 ]; then
			/usr/bin/python3 "$repo/scripts/notebook-light.py" "$out/$name" "$nb"
		fi
	else
		echo "FAIL $name: bad outputs" >&2
		failed=$((failed + 1))
		retry+=("$nb")
	fi
done
# A cell's last display can be lost: GoNB closes its end of the display pipe
# when the cell's program exits, and gonbui.DisplayHTML does not wait for the
# kernel to read it (gonbui.Sync would). A notebook that ran but failed the
# output checks therefore gets one more run; NOTEBOOK_RETRY=0 turns this off.
if [ "${NOTEBOOK_RETRY:-1}" = 1 ] && [ ${#retry[@]} -gt 0 ]; then
	for nb in "${retry[@]}"; do
		echo "=== $(basename "$nb"): running once more (a lost display is a known GoNB race)"
		if NOTEBOOK_RETRY=0 "${BASH_SOURCE[0]}" "$nb"; then
			failed=$((failed - 1))
		fi
	done
fi
if [ "$failed" -gt 0 ]; then
	echo "run-notebooks: $failed of $# notebooks failed" >&2
	exit 1
fi
echo "run-notebooks: $# notebooks passed"
