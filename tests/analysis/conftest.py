"""Shared by the analysis tests: coffea's warnings about our synthetic files are not news, and a
small generated file set."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="coffea")
        yield


@pytest.fixture(scope="module")
def small_fileset(tmp_path_factory):
    """Two MC files per process and the data, ~300 events each (``h3_samples``), one set per
    test module: ``(datasets.yaml, corrections.json)``."""
    from tests.analysis import h3_samples as h3

    tmp = tmp_path_factory.mktemp("small-fileset")
    yaml_path = h3.make_fileset(tmp, mc_files=2, mc_events=300, data_events=300)
    return yaml_path, h3.corrections_for(tmp)
