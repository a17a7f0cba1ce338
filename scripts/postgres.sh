# Sourced by scripts/test: make sure this checkout's PostgreSQL server is running for the
# store tests and export STAGELINE_TEST_POSTGRESQL_URL pointing at it.
#
# - STAGELINE_TEST_POSTGRESQL_URL already set: nothing to do (your own server is used).
# - Not root: nothing is started; the PostgreSQL tests skip (and fail when CI is set).
# - Root: install Debian's `postgresql` package if no initdb is found, initdb a throw-away
#   cluster in .pgdata/ owned by the postgres user (trust auth, test data only), start it on
#   127.0.0.1 with its unix socket in that directory, and create the database
#   `stageline_test`. Quick (one pg_ctl status) when already running.
#   Stop it with: runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D .pgdata stop
#
# The server belongs to its checkout: two checkouts testing at once on one machine never
# share one (each test makes and drops schemas in `stageline_test`). The port is
# STAGELINE_TEST_POSTGRESQL_PORT when set, else derived from the checkout's path
# (54330 + cksum % 5000); when something else already listens there (another checkout's
# cluster whose path hashed alike, any other program), the next free port is taken, up to
# 20 ports on. A port already in use is never shared. A cluster that is running stays on
# the port it was started on (read from its postmaster.pid).
#
# With STAGELINE_POSTGRES_FUNCTIONS_ONLY=1 the script only defines its functions (tests use
# this to check the port derivation without starting anything).

# The port this checkout's cluster is started on when STAGELINE_TEST_POSTGRESQL_PORT is
# unset and nothing listens there. $1: the checkout's path.
_stageline_pg_derived_port() {
    local sum
    sum="$(printf '%s' "$1" | cksum)"
    echo $((54330 + ${sum%% *} % 5000))
}

# True when something accepts TCP connections on 127.0.0.1:$1.
_stageline_pg_port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The first port from $1 on (20 at most) that nothing listens on; fails with a message
# when all are taken.
_stageline_pg_free_port() {
    local port last=$(($1 + 19))
    for ((port = $1; port <= last; port++)); do
        if ! _stageline_pg_port_taken "$port"; then
            echo "$port"
            return 0
        fi
    done
    echo "== postgres: 127.0.0.1 ports $1 to $last are all in use by other programs;" \
        "set STAGELINE_TEST_POSTGRESQL_PORT to a free port" >&2
    return 1
}

_stageline_postgres() {
    if [ -n "${STAGELINE_TEST_POSTGRESQL_URL:-}" ]; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "== postgres: not root and STAGELINE_TEST_POSTGRESQL_URL is unset;" \
            "the PostgreSQL tests will skip (or fail when CI is set)"
        return 0
    fi
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
    local port wanted="${STAGELINE_TEST_POSTGRESQL_PORT:-}"
    if runuser -u postgres -- "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        # The fourth line of postmaster.pid is the port the server listens on.
        port="$(sed -n 4p "$data/postmaster.pid")"
        if [ -n "$wanted" ] && [ "$wanted" != "$port" ]; then
            echo "== postgres: this checkout's cluster ($data) runs on port $port, not on" \
                "STAGELINE_TEST_POSTGRESQL_PORT=$wanted; stop it first:" \
                "runuser -u postgres -- $bindir/pg_ctl -D $data stop" >&2
            return 1
        fi
    else
        if [ -n "$wanted" ]; then
            port="$wanted"
            if _stageline_pg_port_taken "$port"; then
                echo "== postgres: 127.0.0.1:$port (STAGELINE_TEST_POSTGRESQL_PORT) is in use" \
                    "by another server, not this checkout's cluster ($data), and is not shared;" \
                    "choose a free port, or unset the variable to use one derived from" \
                    "the checkout's path" >&2
                return 1
            fi
        else
            port="$(_stageline_pg_free_port "$(_stageline_pg_derived_port "$PWD")")" || return 1
        fi
        echo "== postgres: starting this checkout's cluster ($data) on 127.0.0.1:$port"
        (cd / && runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -l "$data/server.log" \
            -w -s -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=200" \
            start)
    fi
    if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAq -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = 'stageline_test'" | grep -q 1; then
        "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres stageline_test
    fi
    export STAGELINE_TEST_POSTGRESQL_URL="postgresql+psycopg://postgres@127.0.0.1:$port/stageline_test"
}

if [ -z "${STAGELINE_POSTGRES_FUNCTIONS_ONLY:-}" ]; then
    _stageline_postgres
    unset -f _stageline_postgres _stageline_pg_derived_port _stageline_pg_port_taken \
        _stageline_pg_free_port
fi
