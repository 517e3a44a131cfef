#!/usr/bin/env bash
# The Python environment of `citydata bench`'s anchors (DuckDB and PostgreSQL via psycopg):
# made once under ~/.cache/citydata-bench/venv. The citydata binary installs nothing itself.
set -euo pipefail
venv="${CITYDATA_BENCH_VENV:-$HOME/.cache/citydata-bench/venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check duckdb 'psycopg[binary]'
echo "anchors' Python: $venv/bin/python"
