"""A measured payload's tag-and-probe systematic is a nuisance of its own group: its variation
is labelled ``effSyst_...`` (the statistical eigen-variations stay ``effStat_...``), grouped as
"Muon eff. syst." and shown with its eta range."""

from __future__ import annotations

import copy
import json

from analysis.postprocess.groups import systematic_group
from corrections.evaluate import Corrections
from processors.variations import EfficiencyModel


def _with_syst(payload: dict) -> dict:
    """The payload with ``syst_up``/``syst_down`` in both scale factors (copies of nominal)."""
    out = copy.deepcopy(payload)
    for corr in out["corrections"]:
        if corr["name"] in ("muon_idip_sf", "muon_trigger_sf"):
            nominal = next(c["value"] for c in corr["data"]["content"] if c["key"] == "nominal")
            for key in ("syst_up", "syst_down"):
                corr["data"]["content"].append({"key": key, "value": copy.deepcopy(nominal)})
    return out


def test_the_tag_and_probe_systematic_is_its_own_nuisance_group(corrections_json):
    payload = json.loads(corrections_json.read_text())
    plain = EfficiencyModel(Corrections(json.dumps(payload))).labels()
    labels = EfficiencyModel(Corrections(json.dumps(_with_syst(payload)))).labels()
    syst = [lab for lab in labels if "syst" in lab]
    # one up/down pair per eta bin and kind, all effSyst; the eigen-variations are unchanged
    n_eta = len({lab.split("_")[1] for lab in plain})
    assert len(syst) == 2 * 2 * n_eta
    assert all(lab.startswith("effSyst_eta") for lab in syst)
    assert [lab for lab in labels if "syst" not in lab] == plain
    assert all(lab.startswith("effStat_eta") for lab in plain)
    assert systematic_group("effSyst_eta3_idip_syst") == "Muon eff. syst."
    assert systematic_group("effStat_eta3_idip_eig0") == "Muon eff. stat."
