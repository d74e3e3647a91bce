#!/usr/bin/python3
"""Writes the committed copy of an executed notebook: light and viewable anywhere.

    scripts/notebook-light.py EXECUTED.ipynb DEST.ipynb

Chart outputs carry interactive HTML (with, once per notebook, the 1 MB ECharts
library) and a PNG snapshot of the same chart. Viewers that do not run the
HTML's scripts show an empty box for it: GitHub's notebook view, and JupyterLab
for any notebook it does not trust (one pulled from a repository: its HTML is
sanitised, scripts removed, and JupyterLab still prefers text/html over
image/png). So the committed copy keeps the PNG of every chart and drops its
HTML (a chart without a snapshot is left out, with a note); running the
notebook brings the interactive charts back. Other outputs
are kept as they are; volatile execution metadata is dropped so that a rerun
with the same results changes nothing.
"""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
nb = json.load(open(src))
dropped = kept = 0
for cell in nb["cells"]:
    cell.get("metadata", {}).pop("execution", None)
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        html = "".join(data.get("text/html", ""))
        if 'class="viz-block"' in html:
            if "image/png" not in data:
                # No snapshot (no Chromium, or it timed out): a note rather
                # than a megabyte of chart data nobody can see.
                data["text/plain"] = "[chart not stored: it had no PNG snapshot; run the notebook to draw it]"
                kept += 1
            del data["text/html"]
            dropped += 1
nb.get("metadata", {}).pop("signature", None)
with open(dst, "w") as f:
    json.dump(nb, f, indent=1, ensure_ascii=False)
    f.write("\n")
size = len(open(dst, "rb").read())
print("  %s: %d charts stored as PNG, %d without a snapshot left out, %.0f KiB" % (dst, dropped - kept, kept, size / 1024))
if kept:
    print("  warning: %d charts had no PNG snapshot and are left out of the committed copy" % kept, file=sys.stderr)
