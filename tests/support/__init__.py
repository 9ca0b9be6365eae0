"""Helpers for tests: real servers started on demand."""
