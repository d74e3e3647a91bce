#!/bin/sh
# Installs DuckDB's Node.js client (@duckdb/node-api, a real DuckDB) for the
# tests that query our Parquet files with it. Usage: duckdb-install.sh [DIR]
# (default $DIFFROUTE_DUCKDB or ~/.cache/diffroute/duckdb). Prints DIR.
set -eu
DIR=${1:-${DIFFROUTE_DUCKDB:-$HOME/.cache/diffroute/duckdb}}
VERSION=1.5.6-r.1
if [ -f "$DIR/node_modules/@duckdb/node-api/package.json" ] &&
	grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/@duckdb/node-api/package.json"; then
	echo "$DIR"
	exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "duckdb-install: npm not found (apt-get install npm)" >&2; exit 1; }
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"private": true}' >"$DIR/package.json"
npm install --prefix "$DIR" --silent --no-audit --no-fund "@duckdb/node-api@$VERSION" >&2
echo "$DIR"
