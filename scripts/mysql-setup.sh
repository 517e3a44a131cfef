#!/usr/bin/env bash
# Make a local MariaDB (MySQL-compatible) reachable for the MySQL source tests (#18) at
#   mysql://citydata:citydata@127.0.0.1:3306/
# Installs Debian's `mariadb-server` when absent (needs root), starts it when it is down and
# creates the `citydata` user, which may create the tests' scratch databases. Prints the URL to
# use as CITYDATA_TEST_MYSQL_URL.
set -euo pipefail
{

if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
    echo "mysql-setup: installing mariadb-server from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >&2
fi
if ! mariadb-admin ping --silent 2>/dev/null; then
    # The init script works without systemd; mysqld_safe is the fallback.
    service mariadb start >&2 2>&1 || (mysqld_safe --user=mysql >/dev/null 2>&1 &)
    for _ in $(seq 1 60); do
        if mariadb-admin ping --silent 2>/dev/null; then break; fi
        sleep 0.5
    done
fi
mariadb-admin ping --silent

mariadb -u root <<'SQL'
CREATE USER IF NOT EXISTS 'citydata'@'127.0.0.1' IDENTIFIED BY 'citydata';
CREATE USER IF NOT EXISTS 'citydata'@'localhost' IDENTIFIED BY 'citydata';
GRANT ALL PRIVILEGES ON `citydata\_%`.* TO 'citydata'@'127.0.0.1';
GRANT ALL PRIVILEGES ON `citydata\_%`.* TO 'citydata'@'localhost';
FLUSH PRIVILEGES;
SQL
# Scratch databases left by earlier runs.
for db in $(mariadb -u root -N -e "SHOW DATABASES LIKE 'citydata\\_src\\_%'"); do
    mariadb -u root -e "DROP DATABASE \`$db\`"
done

} >&2 </dev/null
echo "mysql://citydata:citydata@127.0.0.1:3306/"
