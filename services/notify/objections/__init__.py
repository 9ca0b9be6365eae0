"""Objections (异议) to an announcement during its notice: filed by the public, resolved by a
reviewer; an open or upheld objection holds the award's finalisation."""
