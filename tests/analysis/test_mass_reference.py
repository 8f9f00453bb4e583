"""The reference mass of the mass weights travels with the samples: ``wmass generate`` writes
``mass_reference_gev`` into datasets.yaml for the W and Z datasets, :func:`load_datasets`
checks it, the histmaker stores it per dataset in hists.h5 (None elsewhere and in old files)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import h5py
import pytest
import yaml

from analysis import generate
from analysis.datasets import load_datasets
from analysis.generate.processes import MW_REF, MZ_REF, PROCESSES
from analysis.histmaker import histmaker
from analysis.io import DatasetHistograms, describe, read_histograms, write_histograms
from analysis.schemas import validate
from processors.errors import ConfigError

EXPECTED = {"wmunu": MW_REF, "wtaunu": MW_REF, "zmumu": MZ_REF, "ztautau": MZ_REF}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny generated sample and its hists.h5 (``datasets.yaml``, ``hists.h5``)."""
    tmp = tmp_path_factory.mktemp("massref")
    yaml_path = generate.generate_samples(tmp, events=400, seed=11, corrections=False)
    out = tmp / "hists.h5"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="coffea")
        histmaker("wmass", yaml_path, out, executor="iterative", variations=False, progress=False)
    return yaml_path, out


def test_generate_writes_the_reference_of_the_datasets_with_mass_weights(generated):
    yaml_path, _ = generated
    doc = yaml.safe_load(yaml_path.read_text())["datasets"]
    assert set(doc) == {*PROCESSES, "data"}
    for name, entry in doc.items():
        assert entry.get("mass_reference_gev") == EXPECTED.get(name), name
    # the same reference as truth.json, and as the datasets it names as mass-weighted
    truth = json.loads((yaml_path.parent / "truth.json").read_text())
    assert doc["wmunu"]["mass_reference_gev"] == truth["mw_ref_gev"]
    assert doc["zmumu"]["mass_reference_gev"] == truth["mz_ref_gev"]
    assert truth["mass_weights_processes"] == {"W": ["wmunu", "wtaunu"], "Z": ["zmumu", "ztautau"]}
    loaded = load_datasets(yaml_path)
    assert {n: ds.mass_reference_gev for n, ds in loaded.items()} == {
        n: EXPECTED.get(n) for n in doc
    }
    assert load_datasets(yaml_path, max_files=1)["wmunu"].mass_reference_gev == MW_REF


def test_hists_carry_the_reference_for_w_and_z_and_none_otherwise(generated):
    _, out = generated
    f = read_histograms(out, histograms=False)
    got = {name: ds.mass_reference_gev for name, ds in f.datasets.items()}
    assert got == {name: EXPECTED.get(name) for name in (*PROCESSES, "data")}
    with h5py.File(out) as h5:
        assert h5["datasets/wmunu"].attrs["mass_reference_gev"] == MW_REF
        assert "mass_reference_gev" not in h5["datasets/qcd"].attrs  # None: absent
    doc = describe(out)
    assert doc["datasets"]["zmumu"]["mass_reference_gev"] == MZ_REF
    assert doc["datasets"]["data"]["mass_reference_gev"] is None
    validate(json.loads(json.dumps(doc)))  # the packaged contract of `wmass inspect --json`


def _fileset(tmp: Path, **wmunu: Any) -> Path:
    (tmp / "w.root").touch()
    (tmp / "d.root").touch()
    doc = {
        "datasets": {
            "wmunu": {"process": "Wmunu", "is_data": False, "files": ["w.root"], **wmunu},
            "data": {"process": "Data", "is_data": True, "files": ["d.root"]},
        }
    }
    path = tmp / "datasets.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_real_datasets_without_the_key_stay_valid(tmp_path):
    ds = load_datasets(_fileset(tmp_path))
    assert ds["wmunu"].mass_reference_gev is None and ds["data"].mass_reference_gev is None
    ds = load_datasets(_fileset(tmp_path, mass_reference_gev=80))  # an int is a number
    assert ds["wmunu"].mass_reference_gev == 80.0
    assert isinstance(ds["wmunu"].mass_reference_gev, float)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-80.379, "must be a positive number"),
        (0.0, "must be a positive number"),
        (math.nan, "must be a positive number"),
        (math.inf, "must be a positive number"),
        ("80.379", "must be int or float or null"),
        (True, "must be int or float or null"),
    ],
)
def test_a_bad_reference_names_the_dataset_and_the_key(tmp_path, value, reason):
    path = _fileset(tmp_path, mass_reference_gev=value)
    with pytest.raises(ConfigError, match=reason) as info:
        load_datasets(path)
    assert info.value.key == "datasets.wmunu.mass_reference_gev"
    assert info.value.source == str(path)
    assert "datasets.wmunu.mass_reference_gev" in str(info.value)


def test_data_have_no_mass_reference(tmp_path):
    path = _fileset(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["datasets"]["data"]["mass_reference_gev"] = 80.379
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="MC only") as info:
        load_datasets(path)
    assert info.value.key == "datasets.data.mass_reference_gev"


def test_round_trip_and_old_files_without_the_attribute_read_none(tmp_path):
    content = [
        DatasetHistograms(name="wmunu", process="Wmunu", xsec_pb=1.0, mass_reference_gev=80.379),
        DatasetHistograms(name="ttbar", process="Top", xsec_pb=1.0),
    ]
    path = write_histograms(tmp_path / "hists.h5", content, {"command": "test"})
    back = read_histograms(path)
    assert back["wmunu"].mass_reference_gev == 80.379
    assert back["ttbar"].mass_reference_gev is None
    with h5py.File(path, "r+") as f:  # as written before the attribute existed
        del f["datasets/wmunu"].attrs["mass_reference_gev"]
    assert read_histograms(path)["wmunu"].mass_reference_gev is None
    assert describe(path)["datasets"]["wmunu"]["mass_reference_gev"] is None
