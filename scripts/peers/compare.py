"""Compare discharge files of the side-by-side benchmark, reach by reach.

usage: compare.py TOL REFERENCE.nc OTHER.nc [OTHER.nc ...]

Each file is a (time, reach) netCDF: RAPID's Qout(time, rivid), diffroute's
and refroute's Qout, or river-route's Q(time, river_id). Reaches are matched by
id (river-route writes them in topological order). Prints, per file, the
largest difference relative to the value (|a - b| / max(|a|, |b|), over values
above 1e-6 of the reference's peak) and relative to the reference's peak, and
exits 1 when either exceeds TOL.
"""
import sys

import netCDF4
import numpy as np


def read(path):
    with netCDF4.Dataset(path) as ds:
        for name in ('Qout', 'Q'):
            if name in ds.variables:
                v = ds.variables[name]
                break
        else:
            sys.exit(f'{path}: no Qout or Q variable')
        dim = v.dimensions[1]
        ids = np.asarray(ds.variables[dim][:]).astype(np.int64)
        if v.dimensions[0] != 'time':
            sys.exit(f'{path}: {v.name}{v.dimensions}: want (time, reach)')
        q = np.asarray(v[:], dtype=np.float64)
    return ids, q


def main():
    tol = float(sys.argv[1])
    ref_ids, ref = read(sys.argv[2])
    peak = np.abs(ref).max()
    bad = False
    for path in sys.argv[3:]:
        ids, q = read(path)
        if q.shape != ref.shape:
            print(f'{path}: shape {q.shape}, reference {ref.shape}')
            bad = True
            continue
        pos = {int(r): k for k, r in enumerate(ids)}
        try:
            cols = np.array([pos[int(r)] for r in ref_ids])
        except KeyError as e:
            print(f'{path}: reach {e} missing')
            bad = True
            continue
        q = q[:, cols]
        d = np.abs(q - ref)
        m = np.maximum(np.abs(q), np.abs(ref))
        big = m > 1e-6 * peak
        rel = (d[big] / m[big]).max() if big.any() else 0.0
        rel_peak = d.max() / peak
        ok = rel <= tol and rel_peak <= tol
        bad |= not ok
        print(f'{path}: max relative difference {rel:.2e}, relative to peak {rel_peak:.2e}'
              f' ({"ok" if ok else "EXCEEDS " + str(tol)})')
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
