"""Helpers for testing code that uses omniq_trio, and the Store conformance suite."""

from ._store_checks import STORE_CHECKS as STORE_CHECKS
from ._store_checks import MakeStore as MakeStore
from ._store_checks import check_store as check_store

__all__ = ["STORE_CHECKS", "MakeStore", "check_store"]
