"""One source of the reference constants: ``analysis.constants``. Nothing else in ``analysis``,
``processors`` or ``corrections`` writes the masses and widths again, the rooms that use them
import them, and ``fit`` (standalone) does not import ``analysis`` at all."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import numpy as np

import analysis.constants as C

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "analysis" / "constants.py"
#: the numbers that must be written only in analysis/constants.py
VALUES = {80.379, 80379.0, 91.1876, 91187.6, 2.085, 2.4952}
#: names that only analysis/constants.py may bind to a number (M_Z: the calibration's old name)
NAMES = {"MW_REF", "MW_REF_MEV", "MZ_REF", "GAMMA_W", "GAMMA_Z", "MASS_STEP_MEV", "M_Z"}


def _sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py") if p != HOME)


def _literal_hits(text: str) -> list[tuple[int, str]]:
    """(line, token) of every number token in code (not in strings or comments) among VALUES."""
    hits = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NUMBER:
            try:
                value = float(tok.string.replace("_", ""))
            except ValueError:  # complex, hex...
                continue
            if value in VALUES:
                hits.append((tok.start[0], tok.string))
    return hits


def _bound_names(text: str) -> list[tuple[int, str]]:
    """(line, name) of every module-level binding of a NAMES name to an expression with a
    number in it (``MW_REF = 80.379``, ``M_Z, GAMMA_Z = 91.1876, 2.4952``)."""
    hits = []
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            numbers = any(
                isinstance(n, ast.Constant) and isinstance(n.value, int | float)
                for n in ast.walk(node.value)
            )
            hits += [(node.lineno, name) for name in sorted(names & NAMES) if numbers]
    return hits


def test_the_detectors_find_a_second_definition():
    source = "'''m = 80.379 in a docstring is fine'''\nM_Z, GAMMA_Z = 91.1876, 2.4952  # 80379\n"
    assert _literal_hits(source) == [(2, "91.1876"), (2, "2.4952")]
    assert _bound_names(source) == [(2, "GAMMA_Z"), (2, "M_Z")]
    assert _bound_names("MW_REF = constants.MW_REF\nMASS = 80\n") == []


def test_nothing_else_writes_the_reference_constants():
    found = []
    for path in _sources("analysis", "processors", "corrections"):
        text = path.read_text()
        rel = path.relative_to(ROOT)
        found += [f"{rel}:{line}: {tok}" for line, tok in _literal_hits(text)]
        found += [f"{rel}:{line}: {name} =" for line, name in _bound_names(text)]
    assert not found, "import these from analysis.constants:\n" + "\n".join(found)


def test_the_rooms_use_the_one_source():
    from analysis.calibrate import scale
    from analysis.course import blinding
    from analysis.generate import processes
    from processors.variations import MASS_SHIFTS_MEV

    assert processes.MW_REF is C.MW_REF and processes.MZ_REF is C.MZ_REF
    assert processes.GAMMA_W is C.GAMMA_W and processes.GAMMA_Z is C.GAMMA_Z
    assert scale.M_Z is C.MZ_REF and scale.GAMMA_Z is C.GAMMA_Z
    assert blinding.MW_REF_MEV is C.MW_REF_MEV
    # processors never imports analysis: its NanoAOD layout must agree with the generator's
    assert tuple(MASS_SHIFTS_MEV) == C.MASS_SHIFTS_MEV == tuple(processes.MASS_SHIFTS_MEV)
    assert np.asarray(processes.MASS_SHIFTS_MEV).dtype.kind == "i"


def test_values_and_units_agree():
    assert C.MW_REF == 80.379 and C.MW_REF * 1000.0 == C.MW_REF_MEV
    assert (C.MZ_REF, C.GAMMA_Z, C.GAMMA_W) == (91.1876, 2.4952, 2.085)
    assert C.MASS_STEP_MEV in C.MASS_SHIFTS_MEV and -C.MASS_STEP_MEV in C.MASS_SHIFTS_MEV
    assert C.MASS_SHIFTS_MEV[len(C.MASS_SHIFTS_MEV) // 2] == 0


def test_fit_stays_standalone():
    imports = []
    for path in _sources("fit"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imports.append((path, node.module))
            elif isinstance(node, ast.Import):
                imports += [(path, alias.name) for alias in node.names]
    ours = [
        f"{p.relative_to(ROOT)}: {m}"
        for p, m in imports
        if m.split(".")[0] in ("analysis", "processors", "corrections")
    ]
    assert not ours, ours
