from shared.db.migration_env import run

# The ledger role may only INSERT and SELECT these (besides the outbox): the journal and what
# it records of people's decisions, and verify's own checkpoints. journal_head is updated (its
# trigger lets it only move forward).
run(
    default_schema="ledger",
    append_only=("journal_entries", "revocations", "reviews", "verify_checkpoints"),
)
