"""Run river-route's RapidMuskingum on the files of to_river_route.py.

usage: run_river_route.py RIVER_ROUTE_SRC DIR DT_ROUTING OUT.nc

RIVER_ROUTE_SRC is river-route's source tree (imported from there, unmodified).
Debian has no Parquet engine for pandas (pyarrow, fastparquet), so the params
table is CSV and pandas.read_parquet reads it; river-route's reader, router and
writer are otherwise its own.
"""
import os
import sys

import pandas as pd

src, d, dt, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, src)

_read_parquet = pd.read_parquet


def read_table(path, columns=None, **kw):
    if str(path).endswith('.csv'):
        df = pd.read_csv(path)
        return df[columns] if columns else df
    return _read_parquet(path, columns=columns, **kw)


pd.read_parquet = read_table

import river_route as rr  # noqa: E402

rr.RapidMuskingum(
    params_file=os.path.join(d, 'params.csv'),
    qlateral_files=[os.path.join(d, 'qlateral.nc')],
    discharge_files=[out],
    dt_routing=dt,
    log=False,
    progress_bar=False,
).route()
