"""Convert a RAPID folder and a runoff netCDF to river-route's inputs.

usage: to_river_route.py RAPID_DIR RUNOFF.nc OUT_DIR

Writes OUT_DIR/params.csv (river_id, downstream_river_id, k, x: the table of
river-route's params parquet, rows in topological order, -1 at outlets) and
OUT_DIR/qlateral.nc (qlateral(time, river_id), m3 per runoff step, columns in
the same order). k.csv is in seconds and x.csv dimensionless, both in
rapid_connect.csv order, as RAPID reads them; runoff in m3 s-1 is multiplied
by the step, m3 (RAPID m3_riv) is taken as it is.
"""
import os
import sys

import netCDF4
import numpy as np


def read_connect(path):
    ids, down = [], []
    with open(path) as f:
        for line in f:
            if line.strip():
                cols = line.split(',')
                ids.append(int(cols[0]))
                down.append(int(cols[1]))
    return np.array(ids, dtype=np.int64), np.array(down, dtype=np.int64)


def topological(ids, down):
    """Positions of the reaches, each after every reach draining into it."""
    pos = {int(r): k for k, r in enumerate(ids)}
    d = np.array([pos.get(int(x), -1) if x > 0 else -1 for x in down])
    pending = np.zeros(len(ids), dtype=np.int64)
    np.add.at(pending, d[d >= 0], 1)
    order = list(np.flatnonzero(pending == 0))
    k = 0
    while k < len(order):
        j = d[order[k]]
        if j >= 0:
            pending[j] -= 1
            if pending[j] == 0:
                order.append(j)
        k += 1
    if len(order) != len(ids):
        sys.exit('rapid_connect.csv: the network has a cycle')
    return np.array(order), d


def main():
    rapid, runoff_path, out = sys.argv[1:4]
    ids, down = read_connect(os.path.join(rapid, 'rapid_connect.csv'))
    k = np.loadtxt(os.path.join(rapid, 'k.csv'), delimiter=',', ndmin=1)
    x = np.loadtxt(os.path.join(rapid, 'x.csv'), delimiter=',', ndmin=1)
    if not (len(k) == len(x) == len(ids)):
        sys.exit('k.csv, x.csv and rapid_connect.csv differ in length')
    order, d = topological(ids, down)
    with open(os.path.join(out, 'params.csv'), 'w') as f:
        f.write('river_id,downstream_river_id,k,x\n')
        for i in order:
            f.write(f'{ids[i]},{ids[d[i]] if d[i] >= 0 else -1},{k[i]!r},{x[i]!r}\n')

    with netCDF4.Dataset(runoff_path) as src:
        name = next(n for n in ('m3_riv', 'runoff', 'qlateral') if n in src.variables)
        v = src.variables[name]
        rivid = np.asarray(src.variables[v.dimensions[1]][:]).astype(np.int64)
        t = src.variables['time']
        times = np.asarray(t[:], dtype=np.float64)
        step = times[1] - times[0]
        vals = np.asarray(v[:], dtype=np.float64)
        units = getattr(v, 'units', '').replace(' ', '')
        tunits = t.units
    if units in ('m3s-1', 'm3/s'):
        vals *= step
    elif units not in ('m3', 'm^3'):
        sys.exit(f'{runoff_path}: {name} units {units!r}: want m3 s-1 or m3')
    col = {int(r): c for c, r in enumerate(rivid)}
    cols = np.array([col[int(ids[i])] for i in order])
    with netCDF4.Dataset(os.path.join(out, 'qlateral.nc'), 'w', format='NETCDF4') as dst:
        dst.createDimension('time', len(times))
        dst.createDimension('river_id', len(order))
        tv = dst.createVariable('time', 'f8', ('time',))
        tv.units = tunits
        tv[:] = times
        dst.createVariable('river_id', 'i8', ('river_id',))[:] = ids[order]
        q = dst.createVariable('qlateral', 'f4', ('time', 'river_id'))
        q.units = 'm3'
        q[:] = vals[:, cols].astype(np.float32)


if __name__ == '__main__':
    main()
