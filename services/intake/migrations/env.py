from shared.db.migration_env import run

# Only the outbox is append-only for the intake role (shared.db.roles grants it to every service).
run(default_schema="intake")
