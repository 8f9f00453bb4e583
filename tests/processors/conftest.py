from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synthetic = _load("synthetic", HERE / "synthetic.py")
truth_factory = _load("truth_factory", HERE.parent / "corrections" / "truth_factory.py")


@pytest.fixture(autouse=True)
def _quiet_coffea():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="coffea")
        yield


@pytest.fixture(scope="session")
def truth(tmp_path_factory) -> dict:
    return truth_factory.tiny_truth()


@pytest.fixture(scope="session")
def corrections_json(tmp_path_factory) -> Path:
    from corrections import build_corrections

    d = tmp_path_factory.mktemp("corr")
    truth_factory.write_tiny_truth(d / "truth.json")
    return build_corrections(d / "truth.json", d / "corrections.json")


@pytest.fixture(scope="session")
def mc_file(tmp_path_factory) -> Path:
    return synthetic.write_sample(tmp_path_factory.mktemp("mc") / "mc.root", 1500, seed=3)


@pytest.fixture(scope="session")
def data_file(tmp_path_factory) -> Path:
    return synthetic.write_sample(
        tmp_path_factory.mktemp("data") / "data.root", 800, seed=4, is_data=True
    )


def events_of(path: Path, dataset: str = "test", **meta):
    """NanoEvents of a whole file, as coffea's Runner builds them."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    metadata = {"dataset": dataset, "filename": str(path), "entrystart": 0, **meta}
    return NanoEventsFactory.from_root(
        {str(path): "Events"}, schemaclass=NanoAODSchema, mode="virtual", metadata=metadata
    ).events()


@pytest.fixture
def load_events():
    return events_of


@pytest.fixture
def make_sample():
    return synthetic.write_sample
