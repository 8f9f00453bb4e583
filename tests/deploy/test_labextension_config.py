"""The JupyterLab Dask sidebar's cluster factory (deploy/jupyter/labextension.yaml) really starts.

dask-labextension reads ``labextension.factory`` from dask's config, imports ``module``, and
calls ``class(*args, **kwargs)``; this test does the same, without JupyterLab, and runs a task.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import dask.config
import yaml

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "jupyter" / "labextension.yaml"


def test_labextension_factory_starts_a_loopback_cluster_that_computes():
    conf = yaml.safe_load(CONFIG.read_text())
    with dask.config.set(conf):
        factory = dask.config.get("labextension.factory")
        assert dask.config.get("labextension.default.adapt") is None
    cls = getattr(importlib.import_module(factory["module"]), factory["class"])
    kwargs = {**factory["kwargs"], "n_workers": 1}
    from distributed import Client

    with cls(*factory["args"], **kwargs) as cluster, Client(cluster) as client:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert client.submit(lambda x: x**2, 12).result() == 144
        (nthreads,) = client.nthreads().values()
        assert nthreads == 1
