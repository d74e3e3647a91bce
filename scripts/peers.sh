#!/usr/bin/env bash
# Side by side with the peers: the same generated basin routed end to end
# (read + route + write) by diffroute, refroute (a plain exact Muskingum loop
# in Go: bench/refroute) and river-route (Python + numba, run from its
# source). Checks that all outputs agree, then times alternating rounds (CPU
# and wall, with the load from uptime). RAPID has no runner here: see
# BENCHMARKS.md.
#
#   scripts/peers.sh [--reaches N] [--days D] [--substep SEC] [--rounds R] [--dir DIR]
#
# Environment:
#   RIVER_ROUTE_SRC  river-route's source tree (a checkout of
#                    river-route, e.g. github.com/rileyhales/river-route 2.0.1; left out
#                    when unset or missing)
#   TOL              largest relative difference accepted (default 2e-6)
# `make peers` runs it with the defaults: 20,000 reaches x 365 days x 96
# sub-steps of 900 s. Installs what it needs with apt (Debian's python3-numba,
# python3-geopandas, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REACHES=20000 DAYS=365 SUBSTEP=900 ROUNDS=3 DIR=${PEERS_DIR:-/tmp/diffroute-peers}
while [ $# -gt 0 ]; do
  case $1 in
    --reaches) REACHES=$2; shift 2 ;;
    --days) DAYS=$2; shift 2 ;;
    --substep) SUBSTEP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    *) echo "peers.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done
TOL=${TOL:-2e-6}
PY=/usr/bin/python3 # Debian's, with Debian's numba (not a pyenv or venv one)

need=""
for p in libnetcdf-dev netcdf-bin python3-numpy python3-netcdf4 python3-pandas python3-xarray \
         python3-numba python3-scipy python3-tqdm python3-geopandas python3-yaml python3-networkx; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  echo "installing:$need"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi

go build -o bin/diffroute ./cmd/diffroute
go build -o bin/refroute ./bench/refroute

B=$DIR/basin_${REACHES}_${DAYS}
mkdir -p "$DIR"
if [ ! -f "$B/runoff.nc" ]; then
  bin/diffroute generate --out "$B" --reaches "$REACHES" --days "$DAYS"
fi

peers="diffroute refroute"
RR=${RIVER_ROUTE_SRC:-}
if [ -n "$RR" ] && [ -f "$RR/river_route/__init__.py" ]; then
  if [ ! -f "$B/rr/qlateral.nc" ]; then
    mkdir -p "$B/rr"
    $PY scripts/peers/to_river_route.py "$B" "$B/runoff.nc" "$B/rr"
  fi
  peers="$peers river-route"
else
  echo "river-route left out: set RIVER_ROUTE_SRC to its source tree"
fi
# One run of peer $1 writing $2, under the command prefix that follows (a timer).
run_peer() {
  local p=$1 out=$2
  shift 2
  case $p in
    diffroute) "$@" bin/diffroute route --rapid "$B" --runoff "$B/runoff.nc" --substep "$SUBSTEP" --out "$out" --quiet ;;
    refroute) "$@" bin/refroute --rapid "$B" --runoff "$B/runoff.nc" --substep "$SUBSTEP" --out "$out" ;;
    river-route) "$@" $PY scripts/peers/run_river_route.py "$RR" "$B/rr" "$SUBSTEP" "$out" >/dev/null ;;
  esac
}
out_of() { echo "$DIR/q_$1.nc"; }

echo "== checking that the outputs agree (first runs; river-route compiles its numba kernels here)"
for p in $peers; do run_peer "$p" "$(out_of "$p")"; done
# river-route averages the values at the end of each sub-step, diffroute's
# default (RAPID's) those at the start: each is compared with the same
# convention.
bin/diffroute route --rapid "$B" --runoff "$B/runoff.nc" --substep "$SUBSTEP" --average end --out "$DIR/q_diffroute_end.nc" --quiet
bin/refroute --rapid "$B" --runoff "$B/runoff.nc" --substep "$SUBSTEP" --average end --out "$DIR/q_refroute_end.nc"
$PY scripts/peers/compare.py "$TOL" "$DIR/q_refroute.nc" "$DIR/q_diffroute.nc"
$PY scripts/peers/compare.py "$TOL" "$DIR/q_refroute_end.nc" "$DIR/q_diffroute_end.nc" $([[ $peers == *river-route* ]] && echo "$DIR/q_river-route.nc")

echo "== timing $ROUNDS alternating rounds: $REACHES reaches x $DAYS days x $((86400 / SUBSTEP)) sub-steps, end to end"
log=$DIR/times.txt
: >"$log"
for r in $(seq "$ROUNDS"); do
  echo "round $r: $(uptime)"
  for p in $peers; do
    run_peer "$p" "$(out_of "$p")" /usr/bin/time -f "$p %e %U %S %M" -a -o "$log"
    tail -1 "$log" | awk '{printf "  %-12s wall %6.2f s  cpu %6.2f s  peak %5.0f MB\n", $1, $2, $3 + $4, $5 / 1024}'
  done
done
echo "after: $(uptime)"
echo "== per peer: wall and CPU (user + system) seconds, min-max over the rounds; ratio of medians to diffroute"
awk '{w[$1] = w[$1] " " $2; c[$1] = c[$1] " " ($3 + $4)} END {for (p in w) print p, w[p], "|", c[p]}' "$log" |
  $PY -c '
import sys, statistics
rows = {}
for line in sys.stdin:
    name, rest = line.split(None, 1)
    w, c = rest.split("|")
    rows[name] = ([float(v) for v in w.split()], [float(v) for v in c.split()])
base_w, base_c = (statistics.median(v) for v in rows["diffroute"])
for name in ["diffroute", "refroute", "river-route"]:
    if name in rows:
        w, c = rows[name]
        print(f"{name:12s} wall {min(w):7.2f}-{max(w):7.2f} s  cpu {min(c):7.2f}-{max(c):7.2f} s"
              f"  x{statistics.median(w) / base_w:5.1f} wall  x{statistics.median(c) / base_c:5.1f} cpu")
'
