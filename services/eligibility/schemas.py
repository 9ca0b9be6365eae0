"""Eligibility's request and response bodies. The application posted to /v1/evaluate is
validated by shared.policy.validation against the catalog and documented by shared.web.openapi;
the receipt it answers is services.eligibility.domain.Assessment.to_receipt. The catalog
versions' and calls' bodies are services/eligibility/policy/schemas.py's."""
