"""Notify's declared tables (services/notify/models.py) are the ones its migrations build."""

from __future__ import annotations

import pytest

from services.notify.models import registry
from tests.support.migrations import model_differences

pytestmark = pytest.mark.integration


async def test_models_match_the_migrations(db_url: str) -> None:
    assert await model_differences(db_url, "notify", registry.metadata) == []
