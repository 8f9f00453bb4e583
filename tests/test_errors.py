"""One error family with one exit code per kind: fit's errors belong to it, every kind has its
own documented code, and the real command returns it with a one-line message naming the file."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import analysis.errors
import corrections.errors
import fit
import fit.errors
import processors.errors
from analysis.cli import EXIT_CODES, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "architecture.md"
NANO = ROOT / "tests" / "data" / "nanoaod"
PACKAGES = ("fit", "corrections", "processors", "analysis")


def _all_kinds() -> set[type[fit.errors.WMassError]]:
    """Every subclass of WMassError, after importing every module of the four packages."""
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(module.__path__, f"{pkg}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    found: set[type[fit.errors.WMassError]] = set()
    todo = [fit.errors.WMassError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return {c for c in found if c.__module__.split(".")[0] in PACKAGES}


def _docs_table() -> dict[int, set[str]]:
    """exit code -> the class names in its row of the "Errors and exit codes" table."""
    text = DOCS.read_text()
    section = text.split("## Errors and exit codes", 1)[1].split("\n## ", 1)[0]
    table: dict[int, set[str]] = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if m:
            table[int(m.group(1))] = set(re.findall(r"`(\w+)`", m.group(2)))
    return table


def test_one_root_for_every_room_and_the_fit():
    root = fit.errors.WMassError
    assert processors.errors.WMassError is root
    assert corrections.errors.WMassError is root
    assert analysis.errors.WMassError is root
    assert issubclass(fit.FitError, processors.errors.WMassError)
    assert issubclass(fit.FitInputError, root) and issubclass(fit.FitDidNotConverge, root)
    assert processors.errors.OutputError is fit.errors.OutputError


def test_every_kind_has_its_own_documented_exit_code():
    kinds = _all_kinds()
    assert {"ChunkFailed", "WorkspaceError", "BlindingError", "FitError"} <= {
        k.__name__ for k in kinds
    }
    own = {k: vars(k)["exit_code"] for k in kinds if "exit_code" in vars(k)}
    codes = list(own.values())
    clashes = {c for c in codes if codes.count(c) > 1}
    assert not clashes, {k.__name__: c for k, c in own.items() if c in clashes}
    docs = _docs_table()
    for kind in kinds:
        code = kind.exit_code
        assert isinstance(code, int) and 1 <= code <= 125, kind
        assert kind.__name__ in docs.get(code, set()), f"{kind.__name__} not in the docs row {code}"
        assert kind.__name__ in EXIT_CODES.get(code, ""), f"{kind.__name__} not in EXIT_CODES"
    by_name = {k.__name__: k for k in kinds}
    for code, names in docs.items():
        for name in names - {"WMassError"}:
            assert name in by_name and by_name[name].exit_code == code, (code, name)
    assert set(docs) == set(EXIT_CODES)


def test_help_prints_the_table(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes" in out
    for code, kinds in EXIT_CODES.items():
        assert re.search(rf"^\s+{code}\s+{re.escape(kinds)}$", out, re.M), code


def _datasets(tmp: Path) -> Path:
    path = tmp / "datasets.yaml"
    path.write_text(
        "datasets:\n  dy:\n    process: Zmumu\n    is_data: false\n    xsec_pb: 6077.2\n"
        f"    files: [{NANO / 'nano_dy.root'}]\n"
    )
    return path


def _missing(tmp: Path) -> tuple[list[str], str]:
    return ["inspect", "missing.h5"], "missing.h5"


def _bad_corrections(tmp: Path) -> tuple[list[str], str]:
    (tmp / "bad.json").write_text('{"schema_version": 2, "corrections": [')
    argv = ["histmaker", "--datasets", str(_datasets(tmp)), "--corrections", "bad.json"]
    return [*argv, "--executor", "iterative", "--out", "h.h5"], "bad.json"


def _malformed_fitinput(tmp: Path) -> tuple[list[str], str]:
    (tmp / "fitinput.h5").write_bytes(b"not hdf5 at all")
    return ["fit", "fitinput.h5", "--out", "r.h5"], "fitinput.h5"


def _bad_cluster(tmp: Path) -> tuple[list[str], str]:
    (tmp / "cluster.yaml").write_text("kind: nonsense\njobs: 2\n")
    argv = ["histmaker", "--datasets", str(_datasets(tmp)), "--cluster", "cluster.yaml"]
    return [*argv, "--out", "h.h5"], "cluster.yaml"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_missing, processors.errors.BadInputFile),
        (_bad_corrections, corrections.errors.BadCorrections),
        (_malformed_fitinput, fit.errors.FitInputError),
        (_bad_cluster, processors.errors.ConfigError),
    ],
    ids=["missing-file", "bad-corrections", "malformed-fitinput", "bad-cluster-yaml"],
)
def test_the_command_returns_the_kind_s_code_and_names_the_file(tmp_path, make, kind):
    argv, culprit = make(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.cli", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == kind.exit_code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"wmass {argv[0]}: error: ") and culprit in line, proc.stderr
    assert kind.exit_code > 1  # a code of its own, not the catch-all


def test_a_fit_result_that_cannot_be_written_is_an_output_error(tmp_path, capsys):
    import numpy as np

    from fit import FitInputBuilder

    b = FitInputBuilder()
    b.add_channel("sr", np.array([110.0, 95.0, 130.0]))
    b.add_process("sr", "sig", np.array([20.0, 30.0, 25.0]), signal=True)
    b.add_process("sr", "bkg", np.array([90.0, 70.0, 100.0]))
    b.add_poi("mu")
    fitinput = b.build().write(tmp_path / "fitinput.h5")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "fitresult.h5"  # under a regular file: no directory can hold it
    assert (
        main(["fit", str(fitinput), "--out", str(out)]) == processors.errors.OutputError.exit_code
    )
    err = capsys.readouterr().err
    assert err.startswith(f"wmass fit: error: cannot write {out}: ") and len(err.splitlines()) == 1
