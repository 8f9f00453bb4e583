from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "truth_factory", Path(__file__).with_name("truth_factory.py")
)
truth_factory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(truth_factory)


@pytest.fixture
def truth_json(tmp_path: Path) -> Path:
    return truth_factory.write_tiny_truth(tmp_path / "truth.json")
