"""The double-entry, hash-chained journal (pure: `domain`)."""
