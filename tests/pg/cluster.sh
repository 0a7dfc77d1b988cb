#!/bin/sh
# A throwaway PostgreSQL 15 + PostGIS cluster for the tests.
#   eval "$(tests/pg/cluster.sh start)"   → exports PGHOST (a private socket
#       directory), PGPORT, PGUSER, PGDATABASE and PM_PG_DIR
#   tests/pg/cluster.sh stop "$PM_PG_DIR" → stops it and removes everything
# The server listens on a unix socket in a private directory and on
# 127.0.0.1 only, on a free private port; fsync is off (test data only).
# As root the server runs as the `postgres` user (initdb refuses root).
set -e
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=$1
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
    dir=$(mktemp -d /tmp/pm_pg.XXXXXX)
    mkdir -p "$dir/data" "$dir/sock"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir"
    chmod 700 "$dir"
    [ "$(id -u)" -eq 0 ] && chmod 755 "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    port=""
    for try in 1 2 3 4 5 6 7 8 9 10; do
        p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000))
        if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $p -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
            start >/dev/null 2>&1; then port=$p; break; fi
    done
    [ -n "$port" ] || { cat "$dir/server.log" >&2; exit 1; }
    as_pg "$PGBIN/../bin/psql" -h "$dir/sock" -p "$port" -U postgres -d postgres -qAt \
        -c "CREATE DATABASE problemap_test" >/dev/null
    as_pg psql -h "$dir/sock" -p "$port" -U postgres -d problemap_test -qAt \
        -c "CREATE EXTENSION postgis" >/dev/null
    echo "export PGHOST='$dir/sock' PGPORT='$port' PGUSER=postgres PGDATABASE=problemap_test PM_PG_DIR='$dir'"
    ;;
stop)
    dir=$2
    [ -n "$dir" ] && [ -d "$dir" ] || exit 0
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
