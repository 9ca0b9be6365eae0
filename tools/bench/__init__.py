"""Benchmarks: commands that print figures next to their baselines (ARCHITECTURE.md, "Performance")."""
