"""Start the Grantline stack (PostgreSQL, Kafka-protocol broker, services) without Docker."""
