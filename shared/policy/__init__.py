"""The program catalog (versioned data with citations) and application validation."""

from shared.policy.catalog import Catalog, CatalogError, Program, load_catalog

__all__ = ["Catalog", "CatalogError", "Program", "load_catalog"]
