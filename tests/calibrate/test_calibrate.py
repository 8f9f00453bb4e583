"""``wmass calibrate`` on a generated sample: closure against the generator's truth, a payload that
drops in for ``corrections.json``, provenance, and the project's errors for bad inputs.

One sample for the module (``SAMPLE``): the generator's default MC share with the data
luminosity raised so that the data hold ~19k Z -> mu mu pairs (~13k MC pairs). At this size the
momentum-scale error per eta bin is ~2e-3, larger than the true biases (<1e-3): the pulls test
that the measurement is unbiased with the right errors, not that it resolves the truth's shape
(docs/calibration.md gives the size that would).
"""

from __future__ import annotations

import json

import correctionlib
import correctionlib.schemav2 as cs
import numpy as np
import pytest

from analysis.calibrate import closure, main
from analysis.errors import ConfigError, MissingBranch
from corrections import CorrectionNames, Corrections

SAMPLE = {"events": 200_000, "seed": 7, "lumi_pb": 12.0}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from analysis.generate import generate_samples

    out = tmp_path_factory.mktemp("calib_sample")
    return generate_samples(out, **SAMPLE).parent


@pytest.fixture(scope="module")
def calib(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("calib_out") / "calib.json"
    argv = ["--datasets", str(sample / "datasets.yaml"), "--out", str(out)]
    assert main([*argv, "--truth", str(sample / "truth.json")]) == 0
    return out


def test_closure_against_truth(calib, sample):
    result = closure(calib, sample / "truth.json")
    print(result.table())
    scale = result.scale
    assert scale.n == 24
    assert abs(scale.mean) <= 0.3 and 0.7 <= scale.rms <= 1.4
    for name in ("idip", "trigger", "idip_binned", "trigger_binned"):
        entry = result.entries[name]
        assert entry.n >= 20, name
        assert abs(entry.mean) <= 0.3 and 0.7 <= entry.rms <= 1.4, (name, entry.summary())
    # the errors are honest but not huge: the SFs are measured to ~1-2% in most bins
    assert np.nanmedian(result.idip_binned.error[result.idip_binned.used]) < 0.03


def test_payload_validates_and_has_the_names_and_inputs_of_corrections_json(calib, sample):
    doc = json.loads(calib.read_text())
    cs.CorrectionSet.model_validate(doc)
    cset = correctionlib.CorrectionSet.from_file(str(calib))
    ref = {
        c["name"]: c for c in json.loads((sample / "corrections.json").read_text())["corrections"]
    }
    got = {c["name"]: c for c in doc["corrections"]}
    assert set(got) == set(ref) == set(vars(CorrectionNames()).values())
    for name, c in ref.items():
        assert [(v["name"], v["type"]) for v in got[name]["inputs"]] == [
            (v["name"], v["type"]) for v in c["inputs"]
        ], name
        assert got[name]["output"]["name"] == c["output"]["name"]
    for name in ("pileup", "muon_prefiring"):  # copied through
        assert got[name] == ref[name]
    corr = Corrections.from_file(calib)
    for name in ("muon_idip_sf", "muon_trigger_sf"):
        keys = corr.keys(name)
        eig = sorted(k[: -len("_up")] for k in keys if k.endswith("_up"))
        assert keys[0] == "nominal" and len(keys) == 1 + 2 * len(eig) >= 7
        sf = cset[name].evaluate(np.array([0.3, -2.0]), np.array([40.0, 30.0]), "nominal")
        assert np.all((sf > 0.8) & (sf < 1.2))
    factor = cset["muon_scale_correction"].evaluate(np.linspace(-2.3, 2.3, 24))
    assert np.all(np.abs(factor - 1) < 0.01)


def test_processors_read_the_payload(calib):
    """The histmaker's efficiency and scale models take the payload as they take the
    generator's (same lookups, per-eta blocks, eigen-variation labels)."""
    from processors.variations import EfficiencyModel, momentum_scale_shifts

    corr = Corrections.from_file(calib)
    model = EfficiencyModel(corr)
    eta = np.array([[0.5, -1.5], [2.2, 0.1]])
    pt = np.array([[40.0, 30.0], [27.0, 60.0]])
    sf, blocks = model.weights(eta, pt, np.array([[True, False], [True, False]]), True)
    assert sf.shape == (2,) and np.all(np.abs(sf - 1) < 0.2)
    assert blocks.ratio.shape[0] == 4 and len(blocks.labels) == 8 * len(model.local)
    shifts = momentum_scale_shifts(corr, eta)
    assert len(shifts.labels) == 48 and np.all(shifts.uncertainty > 0)


def test_outputs_carry_provenance_and_a_log(calib):
    meta = json.loads(calib.with_name("calib.meta.json").read_text())
    prov = meta["provenance"]
    assert prov["command"].startswith("wmass calibrate --datasets")
    assert {"args", "time", "git_hash", "versions", "inputs"} <= set(prov)
    assert any(p.endswith("datasets.yaml") for p in prov["inputs"])
    assert "jax" in prov["versions"] and "correctionlib" in prov["versions"]
    assert len(meta["scale"]["bias"]) == 24
    log = calib.with_suffix(".log").read_text()
    assert "closure against" in log and "momentum scale" in log
    assert not list(calib.parent.glob(".*.tmp"))


def test_bad_datasets_path_is_a_config_error(tmp_path):
    missing = tmp_path / "nowhere" / "datasets.yaml"
    with pytest.raises(ConfigError, match="datasets") as err:
        main(["--datasets", str(missing), "--out", str(tmp_path / "calib.json")])
    assert str(missing) in str(err.value)
    assert not (tmp_path / "calib.json").exists()


def test_missing_branch_names_branch_and_file(tmp_path, sample):
    import uproot

    path = tmp_path / "nano.root"
    with uproot.recreate(path) as f:
        f["Events"] = {"nMuon": np.array([2], np.int32), "run": np.array([1], np.uint32)}
    (tmp_path / "datasets.yaml").write_text(
        "datasets:\n"
        "  data: {process: Data, is_data: true, files: [nano.root]}\n"
        "  zmumu: {process: Zmumu, is_data: false, files: [nano.root]}\n"
    )
    argv = ["--datasets", str(tmp_path / "datasets.yaml"), "--out", str(tmp_path / "c.json")]
    with pytest.raises(MissingBranch, match="Muon_pt") as err:
        main([*argv, "--corrections", str(sample / "corrections.json")])
    assert str(path) in str(err.value)


def test_tnp_systematics_are_in_the_payload_and_small_on_the_generators_shapes(calib):
    """The alternative fits (signal and background shape, mass window, tag selection) give
    ``syst_up/down``: finite, symmetric, and, on a sample whose data follow the fit's nominal
    shapes (the generator's Z line shape, smeared as the MC), small against the statistical
    error: the median over the bins of |alt - nominal| / stat must stay below 0.5 for the shape
    alternatives and 1 for the tag selection (a broken alternative, e.g. a window or a fixed
    parameter the fit cannot follow, gives shifts of several sigma), while not all vanish."""
    corr = Corrections.from_file(calib)
    meta = json.loads(calib.with_name("calib.meta.json").read_text())
    for kind, name in (("idip", "muon_idip_sf"), ("trigger", "muon_trigger_sf")):
        assert {"syst_up", "syst_down"} <= set(corr.keys(name))
        eta_edges, pt_edges = corr.edges(name, "eta"), corr.edges(name, "pt")
        ge, gp = np.meshgrid(
            0.5 * (eta_edges[1:] + eta_edges[:-1]), 0.5 * (pt_edges[1:] + pt_edges[:-1])
        )
        nominal = corr.evaluate(name, ge.ravel(), gp.ravel(), "nominal")
        up = corr.evaluate(name, ge.ravel(), gp.ravel(), "syst_up") - nominal
        down = corr.evaluate(name, ge.ravel(), gp.ravel(), "syst_down") - nominal
        assert np.all(np.isfinite(up)) and np.all(up >= 0)
        np.testing.assert_allclose(up, -down, atol=1e-12)
        eff = meta["efficiency"][kind]
        valid = np.array(eff["valid"])
        stat = np.array(eff["sf_err"], dtype=float)[valid]
        per = {k: np.array(v, dtype=float) for k, v in eff["syst_per_source"].items()}
        assert set(per) == {"signal", "background", "window", "tag"}
        for source, shift in per.items():
            assert np.all(np.isfinite(shift)) and np.all(shift >= 0), (kind, source)
            ratio = np.median(shift[valid] / stat)
            # the tag alternative fits a subset of the probes: its shift has a statistical
            # part (~0.5 sigma on this small sample); the shape alternatives fit the same probes
            assert ratio < (1.0 if source == "tag" else 0.5), (kind, source, ratio)
        total = np.array(eff["syst"], dtype=float)
        assert total.max() > 0
        np.testing.assert_allclose(total**2, sum(v**2 for v in per.values()), rtol=1e-9)
        assert "T&P systematics" in calib.with_suffix(".log").read_text()


def test_the_histmaker_reads_the_systematic_as_a_variation(calib):
    from processors.variations import EfficiencyModel

    model = EfficiencyModel(Corrections.from_file(calib))
    assert "syst" in model.eig["idip"] and "syst" in model.eig["trigger"]
    # its own nuisance group ("Muon eff. syst."), beside the statistical eigen-variations
    assert "effSyst_eta0_idip_systUp" in model.labels()
    assert "effStat_eta0_idip_systUp" not in model.labels()
