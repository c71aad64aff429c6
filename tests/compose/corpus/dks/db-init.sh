#!/bin/bash
# Runs once, on an empty data directory (postgres's /docker-entrypoint-initdb.d), as postgres: creates
# the role the API logs in as and the database it owns. Values come from the task's environment and
# secrets and reach SQL only as psql variables read from the environment (\getenv), quoted by psql
# (:'v' a literal) and format() (%I an identifier, %L a literal): a quote in a name or password stays
# data. No value is on a command line, where any process on the host could read it.
#
# The role may log in and owns its database, so it can create the tables its migrations make there
# (since PostgreSQL 15 the public schema belongs to the database's owner); it cannot create databases
# or roles, and no other role may connect to the database but superusers.
set -euo pipefail
: "${DB_ROLE_NAME:?}" "${DB_ROLE_PASSWORD:?}" "${DB_NAME:?}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" --dbname postgres <<'SQL'
-- A failed statement would be logged whole, password included.
SET log_min_error_statement = panic;
\getenv role DB_ROLE_NAME
\getenv password DB_ROLE_PASSWORD
\getenv database DB_NAME
SELECT format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L',
              :'role', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- The cluster's locale: the image's initdb ran under its LANG (en_US.utf8).
SELECT format('CREATE DATABASE %I WITH OWNER %I ENCODING %L TEMPLATE template0', :'database', :'role', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'database') \gexec
SQL
