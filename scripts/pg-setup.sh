#!/usr/bin/env bash
# Make a local PostgreSQL reachable for the test suite at
#   postgres://citydata:citydata@127.0.0.1:5432/postgres
# Installs Debian's `postgresql` package when absent (needs root), starts the cluster when it
# is down, creates the `citydata` role (LOGIN CREATEDB) and drops test databases left behind
# by earlier runs. Prints the URL to use as CITYDATA_TEST_DATABASE_URL.
set -euo pipefail

as_postgres() { runuser -u postgres -- "$@"; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "pg-setup: installing postgresql from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if [ ! -d "/etc/postgresql/$version/main" ]; then
    pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p 5432; then break; fi
    sleep 0.5
done
pg_isready -h 127.0.0.1 -p 5432 >/dev/null

as_postgres psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citydata') THEN
        CREATE ROLE citydata LOGIN CREATEDB PASSWORD 'citydata';
    ELSE
        ALTER ROLE citydata LOGIN CREATEDB PASSWORD 'citydata';
    END IF;
END
$$;
SQL

# Drop test databases of earlier runs.
as_postgres psql -Atq -c "SELECT datname FROM pg_database WHERE datname LIKE 'citydata\_test\_%'" |
    while read -r db; do as_postgres dropdb --if-exists "$db"; done

echo "postgres://citydata:citydata@127.0.0.1:5432/postgres"
