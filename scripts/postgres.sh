#!/usr/bin/env bash
# Optional PostgreSQL serving target: install (Debian), start on 127.0.0.1 only, create the
# database and the loader role, print the loader DSN (CRM_POSTGRES_DSN) on stdout.
# Idempotent: a second run finds everything in place and changes nothing.
# Must run as root or as a user that may sudo to postgres.
set -euo pipefail

PG_DB=${CRM_POSTGRES_DB:-crm}
PG_LOADER=${CRM_POSTGRES_LOADER:-crm_loader}
# Demo password for a server that listens on 127.0.0.1 only; a deployment sets its own.
PG_LOADER_PASSWORD=${CRM_POSTGRES_LOADER_PASSWORD:-crm-loader-demo}
PG_PORT=${CRM_POSTGRES_PORT:-5432}

log() { echo "postgres.sh: $*" >&2; }

if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || ! command -v pg_ctlcluster >/dev/null; then
    log "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
fi
VERSION=$(basename "$(ls -d /usr/lib/postgresql/*/ | sort -V | tail -n 1)")

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres -- "$@"; fi
}

if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$VERSION main"; then
    log "creating cluster $VERSION/main"
    pg_createcluster "$VERSION" main --port "$PG_PORT" >&2
fi
# Our settings live in a drop-in file (Debian's postgresql.conf includes conf.d); a change restarts.
CONF="/etc/postgresql/$VERSION/main/conf.d/crm_serving.conf"
WANTED=$(printf "listen_addresses = '127.0.0.1'\nport = %s\n" "$PG_PORT")
if [ "$(cat "$CONF" 2>/dev/null)" != "$WANTED" ]; then
    log "writing $CONF"
    printf '%s\n' "$WANTED" > "$CONF"
    pg_ctlcluster "$VERSION" main stop >/dev/null 2>&1 || true
fi
if ! pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $4}' | grep -qx online; then
    log "starting cluster $VERSION/main on 127.0.0.1:$PG_PORT"
    pg_ctlcluster "$VERSION" main start >&2
fi

# Values reach SQL as psql variables (:'name' quotes them), never pasted into the text.
as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres \
    -v loader="$PG_LOADER" -v password="$PG_LOADER_PASSWORD" -v db="$PG_DB" >&2 <<'SQL'
select not exists (select from pg_roles where rolname = :'loader') as create_role \gset
\if :create_role
create role :"loader" login createrole password :'password';
\endif
select not exists (select from pg_database where datname = :'db') as create_db \gset
\if :create_db
create database :"db" owner :"loader";
-- Nobody but the owner may use schema public; BI roles read only what publish grants.
\c :"db"
revoke all on schema public from public;
\endif
SQL

echo "postgresql://$PG_LOADER:$PG_LOADER_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
