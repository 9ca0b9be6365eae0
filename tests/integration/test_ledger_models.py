"""The ledger's declared tables (services/ledger/models.py) are the ones its migrations build."""

from __future__ import annotations

import pytest

from services.ledger.models import registry
from tests.support.migrations import model_differences

pytestmark = pytest.mark.integration


async def test_the_models_match_the_migrations(db_url: str) -> None:
    assert await model_differences(db_url, "ledger", registry.metadata) == []
