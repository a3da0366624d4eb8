#!/bin/sh
# Our own database (audit trail, subscriptions, secret-question hashes) beside Keycloak's.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE USER cimr WITH PASSWORD '${CIMR_DB_PASSWORD}';
CREATE DATABASE cimr OWNER cimr;
SQL
