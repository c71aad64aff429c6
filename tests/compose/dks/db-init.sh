#!/bin/bash
# Runs once, on an empty data directory (postgres's /docker-entrypoint-initdb.d): creates the role
# and the database the API uses. Values come from the task's environment and secrets.
set -euo pipefail

role_count=$(psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -tAc \
  "SELECT count(rolname) FROM pg_roles WHERE rolname='$DB_ROLE_NAME'")
if [ "$role_count" -eq 1 ]; then
  echo "role $DB_ROLE_NAME exists; not creating it"
else
  echo "creating role $DB_ROLE_NAME"
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -c \
    "CREATE ROLE \"$DB_ROLE_NAME\" WITH LOGIN NOSUPERUSER CREATEDB CREATEROLE INHERIT NOREPLICATION CONNECTION LIMIT -1 PASSWORD '$DB_ROLE_PASSWORD'"
fi

if psql -U "$POSTGRES_USER" -lqt | cut -d '|' -f 1 | grep -qw "$DB_NAME"; then
  echo "database $DB_NAME exists; not creating it"
else
  echo "creating database $DB_NAME"
  createdb -U "$POSTGRES_USER" -O "$DB_ROLE_NAME" -E UTF8 -T template0 --locale=en_US.utf8 "$DB_NAME"
fi
