from shared.db.migration_env import run

# The notify role may only INSERT and SELECT the transparency log's leaves and stored subtree
# hashes (besides the outbox): an announcement once logged stays logged.
run(default_schema="notify", append_only=("transparency_leaves", "transparency_nodes"))
