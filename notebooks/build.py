"""Write the course notebooks (``notebooks/*.ipynb``) from the cell lists in ``course.py``.

The ``.ipynb`` files are committed; this script is how they are kept consistent:

    .venv/bin/python notebooks/build.py          # rewrite every notebook
    .venv/bin/python notebooks/build.py 04       # only notebooks whose name starts with 04

Cell kinds in ``course.py``: ``md`` (text), ``code``, ``exercise`` (a code cell the learner
fills in; it runs as shipped, doing nothing harmful), ``solution`` (a code cell, collapsed in
Jupyter, tagged ``solution``, that runs in CI so the solution is proven to work) and ``check``
(asserts that tell the learner whether the exercise is right).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from course import NOTEBOOKS  # noqa: E402


def _cell(kind: str, text: str):
    text = text.strip("\n")
    if kind == "md":
        return new_markdown_cell(text)
    if kind == "code":
        return new_code_cell(text)
    if kind == "exercise":
        return new_code_cell(text, metadata={"tags": ["exercise"]})
    if kind == "solution":
        return new_code_cell(
            "# Solution (collapsed: click to expand; try the exercise first)\n" + text,
            metadata={"tags": ["solution"], "jupyter": {"source_hidden": True}},
        )
    if kind == "check":
        return new_code_cell("# Check your answer\n" + text, metadata={"tags": ["check"]})
    raise ValueError(f"unknown cell kind {kind!r}")


def notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """The notebook of a cell list (validated against the nbformat schema)."""
    nb = new_notebook(
        cells=[_cell(kind, text) for kind, text in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "execution": {"timeout": 600},
        },
    )
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding an unchanged course changes no byte
    nbformat.validate(nb)
    return nb


def build(name: str, cells: list[tuple[str, str]], directory: Path = HERE) -> Path:
    """Write ``directory/name.ipynb``."""
    path = Path(directory) / f"{name}.ipynb"
    path.write_text(nbformat.writes(notebook(cells)) + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    for name, cells in NOTEBOOKS.items():
        if argv and not any(name.startswith(a) for a in argv):
            continue
        print(build(name, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
