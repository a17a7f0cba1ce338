# Sourced by scripts/test: make sure a PostgreSQL server is running for the store tests and
# export STAGELINE_TEST_POSTGRESQL_URL pointing at it.
#
# - STAGELINE_TEST_POSTGRESQL_URL already set: nothing to do (your own server is used).
# - Not root: nothing is started; the PostgreSQL tests skip (and fail when CI is set).
# - Root: install Debian's `postgresql` package if no initdb is found, initdb a throw-away
#   cluster in .pgdata/ owned by the postgres user (trust auth, test data only), start it on
#   127.0.0.1:${STAGELINE_TEST_POSTGRESQL_PORT:-54329} with its unix socket in that directory,
#   and create the database `stageline_test`. Quick (one pg_ctl status) when already running.
#   Stop it with: runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D .pgdata stop
_stageline_postgres() {
    if [ -n "${STAGELINE_TEST_POSTGRESQL_URL:-}" ]; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "== postgres: not root and STAGELINE_TEST_POSTGRESQL_URL is unset;" \
            "the PostgreSQL tests will skip (or fail when CI is set)"
        return 0
    fi
    local port="${STAGELINE_TEST_POSTGRESQL_PORT:-54329}"
    local bindir
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        echo "== postgres: installing Debian's postgresql package"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            postgresql >/dev/null
        bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    local data="$PWD/.pgdata"
    if ! runuser -u postgres -- test -x "$PWD"; then
        # The checkout is not reachable by the postgres user (e.g. under /root): keep the
        # cluster in a per-checkout directory that is.
        data="/var/tmp/stageline-pgdata-$(printf '%s' "$PWD" | md5sum | cut -c1-12)"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        echo "== postgres: initdb $data"
        mkdir -p "$data"
        chown postgres: "$data"
        chmod 700 "$data"
        (cd / && runuser -u postgres -- "$bindir/initdb" -D "$data" -U postgres \
            --auth=trust -E UTF8 --no-locale >/dev/null)
    fi
    if ! runuser -u postgres -- "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then
            # Another checkout's test cluster already serves this port: share it.
            echo "== postgres: reusing the server already listening on 127.0.0.1:$port"
        else
            echo "== postgres: starting on 127.0.0.1:$port"
            (cd / && runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -l "$data/server.log" \
                -w -s -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=200" \
                start)
        fi
    fi
    if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAq -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = 'stageline_test'" | grep -q 1; then
        "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres stageline_test
    fi
    export STAGELINE_TEST_POSTGRESQL_URL="postgresql+psycopg://postgres@127.0.0.1:$port/stageline_test"
}
_stageline_postgres
unset -f _stageline_postgres
