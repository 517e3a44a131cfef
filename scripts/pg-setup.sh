#!/usr/bin/env bash
# Make a local PostgreSQL reachable for the test suite at
#   postgres://citydata:citydata@127.0.0.1:5432/postgres
# Installs Debian's `postgresql` package when absent (needs root), starts the cluster when it
# is down, creates the `citydata` role (LOGIN CREATEDB) and drops test databases left behind
# by earlier runs. Prints the URL to use as CITYDATA_TEST_DATABASE_URL.
set -euo pipefail

# Only the URL goes to stdout (callers capture it); everything the tools print goes to stderr
# (pg_ctlcluster prints "Removed stale pid file." to stdout after an unclean stop). A plain
# redirection, not a saved descriptor: the server daemon would inherit it and hold `$(…)` open.
{

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
    # A server killed with its session leaves socket lock files naming a dead (or zombie)
    # process; the new server would refuse to start over them.
    for lock in /var/run/postgresql/.s.PGSQL.*.lock; do
        [ -e "$lock" ] || continue
        pid="$(head -1 "$lock")"
        state="$(ps -o stat= -p "$pid" 2>/dev/null || true)"
        if [ -z "$state" ] || [ "${state#Z}" != "$state" ]; then
            rm -f "$lock" "${lock%.lock}"
        fi
    done
    # After an unclean stop the server replays its WAL first, which can outlast pg_ctl's own
    # wait ("server did not start in time") while the server goes on starting: wait below.
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || echo "pg_ctlcluster: still starting" >&2
fi
for _ in $(seq 1 240); do
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

# Drop test databases of earlier runs, ending their sessions (an aborted source pull can leave
# its slow query running on the server for a while).
as_postgres psql -Atq -c "SELECT datname FROM pg_database WHERE datname LIKE 'citydata\_test\_%'" |
    while read -r db; do as_postgres dropdb --if-exists --force "$db"; done

} >&2

echo "postgres://citydata:citydata@127.0.0.1:5432/postgres"
