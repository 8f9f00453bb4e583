"""The simulation per process and the data of a histograms file, the simulation normalised
to the data luminosity (``xsec * lumi / sumw``), its datasets of one process added up, and
the mass POI each process carries with the reference mass of its mass weights
(``mass_reference_gev`` of datasets.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.postprocess.groups import DATA, W_PROCESSES, Z_PROCESSES
from processors.errors import ConfigError

__all__ = ["ProcessTemplates", "load_processes", "mass_poi", "mass_reference"]


@dataclass
class ProcessTemplates:
    """The simulation of one process in all the axes of the analysis histogram, normalised:
    nominal, variance and every variation histogram ``{name: (values, labels)}``."""

    nominal: np.ndarray  # all axes of the analysis histogram, normalised
    variance: np.ndarray
    variations: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    #: the boson mass (MeV) that the massWeight variations shift, from the datasets' metadata
    mass_reference_mev: float | None = None
    datasets: list[str] = field(default_factory=list)

    def template(self, hist_name: str, label: str) -> np.ndarray:
        values, labels = self.variations[hist_name]
        return values[..., labels.index(label)]


def load_processes(
    hf: Any, lumi_pb: float | None
) -> tuple[dict[str, ProcessTemplates], np.ndarray | None, Any]:
    """Normalised simulation per process, data counts and the nominal axes of a hists file."""
    procs: dict[str, ProcessTemplates] = {}
    data = None
    axes = None
    lumi = lumi_pb if lumi_pb is not None else hf.lumi_pb
    if lumi is None:
        lumis = [ds.lumi_pb for ds in hf.datasets.values() if ds.is_data and ds.lumi_pb]
        lumi = sum(lumis) if lumis else None
    for name, ds in hf.datasets.items():
        if "nominal" not in ds.histograms:
            raise ConfigError(f"datasets/{name}/histograms/nominal", "missing", hf.path)
        h = ds.histograms["nominal"]
        axes = axes or list(h.axes)
        if ds.is_data or ds.process == DATA:
            data = h.values() if data is None else data + h.values()
            continue
        if lumi is None:
            raise ConfigError("lumi_pb", "no data luminosity to normalise the simulation", hf.path)
        s = ds.scale(lumi)
        var = h.variances()
        p = ProcessTemplates(h.values() * s, (var if var is not None else h.values()) * s * s)
        p.datasets = [name]
        ref = getattr(ds, "mass_reference_gev", None)
        p.mass_reference_mev = None if ref is None else 1000.0 * float(ref)
        for hname, vh in ds.histograms.items():
            if hname == "nominal":
                continue
            p.variations[hname] = (vh.values() * s, [str(c) for c in vh.axes[-1]])
        process = ds.process or name
        if process in procs:
            old = procs[process]
            if "massWeight" in p.variations and old.mass_reference_mev != p.mass_reference_mev:
                raise ConfigError(
                    f"datasets/{name}/mass_reference_gev",
                    f"{ref} differs from that of {old.datasets} ({old.mass_reference_mev} MeV) "
                    f"in process {process}: their mass weights cannot be added",
                    hf.path,
                )
            old.datasets.append(name)
            old.nominal = old.nominal + p.nominal
            old.variance = old.variance + p.variance
            for hname, (vals, labels) in p.variations.items():
                if hname in old.variations and old.variations[hname][1] == labels:
                    old.variations[hname] = (old.variations[hname][0] + vals, labels)
                else:
                    old.variations.pop(hname, None)
        else:
            procs[process] = p
    return procs, data, (axes, lumi)


def mass_poi(process: str, with_z: bool) -> str | None:
    if process in W_PROCESSES:
        return "mW"
    if process in Z_PROCESSES and with_z:
        return "mZ"
    return None


def mass_reference(procs: dict[str, ProcessTemplates], poi: str, with_z: bool, path: Any) -> float:
    """The reference mass (MeV) of ``poi``: the one the samples' mass weights are relative to
    (datasets.yaml ``mass_reference_gev``), the same for every process that carries it."""
    refs = {
        name: p
        for name, p in procs.items()
        if mass_poi(name, with_z) == poi and "massWeight" in p.variations
    }
    for name, p in refs.items():
        if p.mass_reference_mev is None:
            raise ConfigError(
                f"datasets/{p.datasets[0]}/mass_reference_gev",
                f"missing: the {poi} reference of the massWeight variations of {name}; add "
                "mass_reference_gev to the dataset in datasets.yaml and rerun the histmaker",
                path,
            )
    values = {p.mass_reference_mev for p in refs.values()}
    if len(values) != 1:
        raise ConfigError(
            "mass_reference_gev",
            f"the processes of {poi} disagree: "
            + ", ".join(f"{n}: {p.mass_reference_mev} MeV" for n, p in refs.items()),
            path,
        )
    return float(values.pop())
