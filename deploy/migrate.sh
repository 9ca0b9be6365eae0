#!/bin/sh
# Run once per release before the services start: every schema's Alembic migrations, then topics.
set -eu
python -m shared.migrate
python -m shared.topics
