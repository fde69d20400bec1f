# tests/pg.sh - a throwaway PostgreSQL for one scenario, sourced after
# lib.sh: pg_start, pg_stop, pg_run_server (start it again), pg_restart,
# pg_sql, pg_dump_data.
# The cluster lives in $T/pg and listens only on a unix socket in that
# folder (listen_addresses = ''); it is stopped by PID when the scenario
# ends.  As root the server runs as the postgres user: $T is opened for
# traversal (711) and $T/pg is given to postgres.
#
# pg_start sets PG_URL (database thlhp, role thlhp, no password) and
# PG_PW_URL (database thlhp_pw, role thlhp_pw, which must give the
# password $PG_PW: scram-sha-256 on the socket).
# shellcheck shell=bash

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_DIR=$T/pg
PG_DATA=$PG_DIR/data
PG_PW=pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
PG_AS=
PG_PID=

# pg_sql SQL [DB] : run SQL as the superuser; rows unaligned, no headers.
pg_sql() {
	"$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -U postgres \
		-d "${2:-postgres}" -c "$1"
}

# pg_dump_data [DB] : the rows of DB (default thlhp), for before/after
# checks (without the \restrict lines, whose key differs every time).
pg_dump_data() {
	"$PG_BIN/pg_dump" -h "$PG_DIR" -U postgres --data-only --no-owner "${1:-thlhp}" |
		grep -v '^\\\(un\)\?restrict '
}

# pg_run_server : start the cluster in $PG_DATA, wait for it; sets PG_PID.
pg_run_server() {
	$PG_AS "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null ||
		{ say "FAIL: PostgreSQL did not start; its log:"; tail -n 20 "$PG_DIR/server.log"; exit 1; }
	PG_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
	BGPIDS="$BGPIDS $PG_PID"
	for _ in $(seq 1 100); do
		"$PG_BIN/pg_isready" -q -h "$PG_DIR" && return 0
		sleep 0.1
	done
	say "FAIL: PostgreSQL does not accept connections; its log:"
	tail -n 20 "$PG_DIR/server.log"
	exit 1
}

# pg_start : initdb, start, create the roles and databases, set PG_URL.
pg_start() {
	[ -x "$PG_BIN/initdb" ] || { say "FAIL: no initdb under /usr/lib/postgresql (apt-get install postgresql)"; exit 1; }
	mkdir -p "$PG_DIR"
	if [ "$(id -u)" = 0 ]; then
		chmod 711 "$T"
		chown postgres: "$PG_DIR"
		chmod 700 "$PG_DIR"
		PG_AS="runuser -u postgres --"
	fi
	$PG_AS "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
		--auth-local=trust --auth-host=reject >"$LOG/initdb.log" 2>&1 ||
		{ say "FAIL: initdb; its output:"; tail -n 20 "$LOG/initdb.log"; exit 1; }
	$PG_AS tee -a "$PG_DATA/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
	$PG_AS tee "$PG_DATA/pg_hba.conf" >/dev/null <<HBA
local all thlhp_pw scram-sha-256
local all all trust
HBA
	pg_run_server
	pg_sql "CREATE ROLE thlhp LOGIN" &&
	pg_sql "CREATE DATABASE thlhp OWNER thlhp" &&
	pg_sql "CREATE ROLE thlhp_pw LOGIN PASSWORD '$PG_PW'" &&
	pg_sql "CREATE DATABASE thlhp_pw OWNER thlhp_pw" ||
		{ say "FAIL: cannot create the test roles and databases"; exit 1; }
	# shellcheck disable=SC2034  # for the scenario
	PG_URL="postgresql:///thlhp?host=$PG_DIR&user=thlhp"
	# shellcheck disable=SC2034
	PG_PW_URL="postgresql://thlhp_pw:$PG_PW@/thlhp_pw?host=$PG_DIR"
}

# pg_stop : stop the cluster (fast: running sessions are cut) and wait.
pg_stop() {
	$PG_AS "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
	BGPIDS=${BGPIDS/ $PG_PID/}
	while kill -0 "$PG_PID" 2>/dev/null; do sleep 0.05; done
}

# pg_restart : stop it and start it again on the same data.
pg_restart() {
	pg_stop
	pg_run_server
}
