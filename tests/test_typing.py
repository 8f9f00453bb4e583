"""The type check of ``make test`` keeps covering the public API: every package ships
``py.typed``, and every module a package's ``__init__`` re-exports (and every room's
``__init__``) is among the files ``[tool.mypy]`` checks, so moving a module cannot silently drop
it from the check. (``make test`` runs ``mypy`` itself.)"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "processors", "corrections", "fit")
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def _reexported(package: str) -> set[str]:
    """The files of the submodules ``package/__init__.py`` imports (eagerly, lazily under
    TYPE_CHECKING, or as ``from . import module``)."""
    init = ROOT / package / "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(init.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1:
            dotted = [node.module] if node.module else [a.name for a in node.names]
        elif node.module and node.module.startswith(f"{package}."):
            dotted = [node.module.removeprefix(f"{package}.")]
        else:
            continue
        for name in dotted:
            path = ROOT / package / Path(*name.split("."))
            out.add(str(path / "__init__.py" if path.is_dir() else path.with_suffix(".py")))
    return {str(Path(p).relative_to(ROOT)) for p in out}


def test_every_package_ships_py_typed():
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file(), package


def test_the_public_api_is_type_checked():
    files = set(CONFIG["files"])
    missing = [f for f in sorted(files) if not (ROOT / f).is_file()]
    assert not missing, f"[tool.mypy] files that do not exist: {missing}"
    public = {f"{p}/__init__.py" for p in PACKAGES}
    for package in PACKAGES:
        public |= _reexported(package)
    public |= {str(p.relative_to(ROOT)) for p in (ROOT / "analysis").glob("*/__init__.py")}
    assert "fit/result.py" in public and "processors/wmass.py" in public  # the walk works
    assert not public - files, f"public modules mypy does not check: {sorted(public - files)}"


def test_the_debt_list_names_checked_modules_only():
    files = {f.removesuffix(".py").replace("/", ".") for f in CONFIG["files"]}
    for override in CONFIG.get("overrides", []):
        if override.get("ignore_errors"):
            unknown = set(override["module"]) - files
            assert not unknown, f"ignore_errors for modules mypy does not check: {unknown}"
    assert CONFIG["follow_imports"] == "silent" and not CONFIG["check_untyped_defs"]
