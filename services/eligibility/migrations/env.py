from shared.db.migration_env import run

# Catalog versions are content-addressed and kept forever: the eligibility role may only add one.
run(default_schema="eligibility", append_only=("catalog_versions",))
