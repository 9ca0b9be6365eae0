#!/bin/sh
# Run once per release before the services start (docker compose's `migrate`, the k8s Job):
#   1. the database roles (shared.db.roles), when GRANTLINE_ADMIN_DATABASE_URL names a role that
#      may create them; each role's password is the one in its DSN (GRANTLINE_MIGRATION_DATABASE_URL
#      for the owner, GRANTLINE_<SERVICE>_DATABASE_URL for each service). Without it, your DBA has
#      created the roles (README, "Database roles").
#   2. every schema's Alembic migrations, as the owner role (GRANTLINE_MIGRATION_DATABASE_URL, else
#      DATABASE_URL); each ends by granting its service's role (grantline-migrate = shared.db.migrate).
#   3. the topics.
# `python -m` runs the copies in the working directory (/app in the image), migration scripts included.
set -eu
if [ -n "${GRANTLINE_ADMIN_DATABASE_URL:-}" ]; then
  python -m shared.db.roles
fi
python -m shared.db.migrate
python -m shared.messaging.topics
