"""Fixtures shared by the test folders.

- ``generated_sample``: a small sample of ``wmass generate`` (its ``datasets.yaml``), made once
  per session and read by the scale, resume and bad-input tests;
- ``cli_cluster``: a real Dask cluster started from the command line (``dask scheduler`` and two
  ``dask worker`` processes on 127.0.0.1), one per test module that asks for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analysis import scale_samples
from tests.fit import fit_models


@pytest.fixture(scope="session")
def generated_sample(tmp_path_factory) -> Path:
    return scale_samples.shared_sample(tmp_path_factory)


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory):
    """One cluster for the module; a test that kills a worker must run last."""
    c = scale_samples.CommandLineCluster(tmp_path_factory.mktemp("cluster"), workers=2)
    yield c
    c.close()


@pytest.fixture(scope="module")
def w_model():
    """The W-like fit input of ``tests/fit/fit_models.py``: asymmetric shapes, 2% MC
    statistics, a masked channel."""
    return fit_models.w_like_model(asymmetric=True, mc_stat=0.02, masked=True)
