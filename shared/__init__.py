"""Code every Grantline service shares: envelope, outbox/inbox, bus, money, settings."""
