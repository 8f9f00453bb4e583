"""Shared by the analysis tests: coffea's warnings about our synthetic files are not news."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="coffea")
        yield
