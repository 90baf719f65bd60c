"""The Store contract (``omniq_trio.testing.STORE_CHECKS``) against every store."""

from __future__ import annotations

import pytest

from omniq_trio.testing import STORE_CHECKS, MakeStore


@pytest.mark.parametrize(
    "check", STORE_CHECKS, ids=lambda check: check.__name__.removeprefix("check_")
)
async def test_contract(check, make_store: MakeStore) -> None:  # type: ignore[no-untyped-def]
    await check(make_store)
