#!/usr/bin/python3
"""Writes the committed copy of an executed notebook: light and viewable anywhere.

    scripts/notebook-light.py EXECUTED.ipynb DEST.ipynb

Chart outputs carry interactive HTML (with, once per notebook, the 1 MB ECharts
library) and a PNG snapshot of the same chart. Viewers that do not run the
HTML's scripts show an empty box for it: GitHub's notebook view, and JupyterLab
for any notebook it does not trust (one pulled from a repository: its HTML is
sanitised, scripts removed, and JupyterLab still prefers text/html over
image/png). So the committed copy keeps the PNG of every chart and drops its
HTML; running the notebook brings the interactive charts back. Other outputs
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
            if "image/png" in data:
                del data["text/html"]
                dropped += 1
            else:
                kept += 1
nb.get("metadata", {}).pop("signature", None)
with open(dst, "w") as f:
    json.dump(nb, f, indent=1, ensure_ascii=False)
    f.write("\n")
size = len(open(dst, "rb").read())
print("  %s: %d charts as PNG only, %d without a snapshot kept as HTML, %.0f KiB" % (dst, dropped, kept, size / 1024))
if kept:
    print("  warning: charts without a PNG snapshot keep their HTML (install chromium)", file=sys.stderr)
