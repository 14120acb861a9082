#!/bin/sh
# isobench micro suite: the two database servers of the shared micro rootfs.
#
#   db.sh pg-init            (image build, chroot) initdb + pgbench -i, unix socket only
#   db.sh pg-serve BIND PORT (runtime, as user postgres) exec postgres on BIND:PORT
#   db.sh maria-init         (image build, chroot) mariadb-install-db + sysbench prepare
#   db.sh maria-serve BIND PORT (runtime, as root; mariadbd drops to mysql) exec mariadbd
#
# The data sets are made once, when the image is built, so every trial of every runtime starts
# from the same bytes (the runtime's copy-on-write root keeps a trial's writes to itself).
# The parameters below are recorded in the manifest by the workloads (micro/databases.py);
# change them together.
set -eu

PG_DATA=/var/lib/isobench-pg
PG_SCALE=10
MARIA_DATA=/var/lib/isobench-mysql
MARIA_SOCK=/tmp/isobench-mysql.sock
SB_TABLES=4
SB_TABLE_SIZE=10000
# The same server settings at init and at serve time, in every runtime (no defaults files read).
# InnoDB's native AIO is off (its own I/O threads instead): gVisor has no io_uring, and
# MariaDB aborts when io_uring_setup succeeds there but waiting on it fails.
MARIA_OPTS="--no-defaults --user=mysql --datadir=$MARIA_DATA --socket=$MARIA_SOCK
  --pid-file=/tmp/isobench-mysql.pid --skip-name-resolve --innodb-buffer-pool-size=256M
  --innodb-use-native-aio=0 --max-connections=200"
PG_OPTS="-c dynamic_shared_memory_type=mmap -c max_connections=100 -k /tmp"

pgbin() {  # the newest installed major version (a shell glob: gVisor refuses `ls -d` here)
    bin=""
    for d in /usr/lib/postgresql/*/bin; do bin=$d; done
    [ -x "$bin/postgres" ] || { echo "no PostgreSQL server in /usr/lib/postgresql" >&2; exit 1; }
    echo "$bin"
}

case "${1:-}" in
pg-init)
    BIN=$(pgbin)
    rm -rf "$PG_DATA" /var/lib/postgresql/*/main /etc/postgresql/*/main
    mkdir -p "$PG_DATA"
    chown postgres:postgres "$PG_DATA"
    chmod 700 "$PG_DATA"
    runuser -u postgres -- "$BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust \
        --no-locale --encoding=UTF8 >/dev/null
    # Clients come from the host: 127.0.0.1 on the host network, the bridge's gateway
    # (docker) or the host end of the VM's veth otherwise. The server listens only where
    # the runtime binds it (127.0.0.1, or inside its own network).
    echo "host all all 0.0.0.0/0 trust" >> "$PG_DATA/pg_hba.conf"
    # shellcheck disable=SC2086
    runuser -u postgres -- "$BIN/pg_ctl" -D "$PG_DATA" -w -l /tmp/isobench-pg-init.log \
        -o "-c listen_addresses='' $PG_OPTS" start >/dev/null
    runuser -u postgres -- "$BIN/pgbench" -h /tmp -i -q -s "$PG_SCALE" postgres
    runuser -u postgres -- "$BIN/pg_ctl" -D "$PG_DATA" -w -m fast stop >/dev/null
    rm -f /tmp/isobench-pg-init.log
    ;;
pg-serve)
    BIN=$(pgbin)
    # shellcheck disable=SC2086
    exec "$BIN/postgres" -D "$PG_DATA" -c "listen_addresses=$2" -p "$3" $PG_OPTS
    ;;
maria-init)
    rm -rf "$MARIA_DATA"
    mkdir -p "$MARIA_DATA"
    chown mysql:mysql "$MARIA_DATA"
    mariadb-install-db --no-defaults --user=mysql --datadir="$MARIA_DATA" --skip-test-db \
        >/dev/null
    # shellcheck disable=SC2086
    mariadbd $MARIA_OPTS --skip-networking &
    pid=$!
    i=0
    until mariadb-admin --socket="$MARIA_SOCK" ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 600 ]; then echo "mariadbd did not start" >&2; kill "$pid"; exit 1; fi
        sleep 0.1
    done
    mariadb --socket="$MARIA_SOCK" -e "CREATE DATABASE sbtest;
        CREATE USER 'sbtest'@'%' IDENTIFIED BY 'sbtest';
        GRANT ALL PRIVILEGES ON sbtest.* TO 'sbtest'@'%';"
    sysbench oltp_read_write --db-driver=mysql --mysql-socket="$MARIA_SOCK" \
        --mysql-user=sbtest --mysql-password=sbtest --mysql-db=sbtest \
        --tables="$SB_TABLES" --table-size="$SB_TABLE_SIZE" prepare >/dev/null
    mariadb-admin --socket="$MARIA_SOCK" shutdown
    wait "$pid"
    ;;
maria-serve)
    # shellcheck disable=SC2086
    exec mariadbd $MARIA_OPTS --bind-address="$2" --port="$3"
    ;;
*)
    echo "usage: db.sh pg-init|pg-serve BIND PORT|maria-init|maria-serve BIND PORT" >&2
    exit 2
    ;;
esac
