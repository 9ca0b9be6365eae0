from shared.db.migration_env import run

run(default_schema="intake")
