"""Build the course notebooks from their plain-text sources: one source, two builds.

The sources are ``notebooks/src/NN-name.py`` in jupytext's *percent* format (a cell starts at a
``# %%`` line, markdown cells are ``# %% [markdown]`` with every line commented). Each source is
built twice:

- the **student build**, ``notebooks/NN-name.ipynb`` (what ``jupyter lab notebooks/`` opens):
  no solution in it;
- the **answer key**, ``notebooks/answer-key/NN-name.ipynb``: the same notebook with the
  solutions in place (a school hands it out after the exercise, or keeps it).

Markers (see notebooks/README.md, "Writing exercises"):

``# %% tags=["exercise"]``
    the learner's cell. It holds a placeholder (``answer = ...``) that both builds keep, and one
    or more blocks between a line ``### BEGIN SOLUTION`` and a line ``### END SOLUTION``. The
    answer key keeps the block (without the two marker lines); the student build replaces it by
    one line ``# YOUR CODE HERE`` (indented like the marker).
``# %% tags=["check"]``
    asserts on the learner's own variable (never on anything the solution alone defines);
    every exercise is followed by one before the next exercise.
``# %% tags=["solution"]`` (code or ``[markdown]``)
    a whole cell that only the answer key has (e.g. the answer to a "why?" question).

Usage::

    .venv/bin/python notebooks/build.py            # rewrite both builds of every notebook
    .venv/bin/python notebooks/build.py 04 07      # only the sources whose name starts so
    .venv/bin/python notebooks/build.py --check    # exit 1 when a built notebook is stale

Both builds have stable cell ids (``cell-NN``, the cell's index in the source, so a student
cell and its answer-key cell share an id) and no outputs: rebuilding an unchanged source
changes no byte. :func:`inject_solutions` puts the answer key's exercise cells into a student
notebook; CI runs that notebook, so the student build itself is proven to work with the
solutions.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from pathlib import Path

import jupytext
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
STUDENT_DIR = HERE
ANSWER_DIR = HERE / "answer-key"
VARIANTS = ("student", "answers")

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
PLACEHOLDER = "# YOUR CODE HERE"
TAGS = ("exercise", "check", "solution")

_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
    "execution": {"timeout": 600},
}


class SourceError(ValueError):
    """A course source breaks a marker rule (names the file and the cell)."""


def sources(prefixes: Sequence[str] = ()) -> list[Path]:
    """The course sources, in order; only those whose name starts with one of ``prefixes``."""
    paths = sorted(SRC.glob("[0-9][0-9]-*.py"))
    return [p for p in paths if not prefixes or any(p.stem.startswith(a) for a in prefixes)]


def split_solution(text: str) -> tuple[str, str, list[str]]:
    """``(student, answer, blocks)`` of an exercise cell's text: the student text has every
    solution block replaced by ``# YOUR CODE HERE``, the answer text has the blocks without
    their marker lines, ``blocks`` are the solution blocks' texts."""
    student: list[str] = []
    answer: list[str] = []
    blocks: list[str] = []
    block: list[str] | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped == BEGIN:
            if block is not None:
                raise SourceError(f"{BEGIN!r} inside a solution block")
            block = []
            student.append(line[: len(line) - len(line.lstrip())] + PLACEHOLDER)
        elif stripped == END:
            if block is None:
                raise SourceError(f"{END!r} without {BEGIN!r}")
            blocks.append("\n".join(block))
            block = None
        elif block is not None:
            block.append(line)
            answer.append(line)
        else:
            student.append(line)
            answer.append(line)
    if block is not None:
        raise SourceError(f"{BEGIN!r} without {END!r}")
    return "\n".join(student), "\n".join(answer), blocks


def read_source(path: Path) -> nbformat.NotebookNode:
    """A source read by jupytext (percent format)."""
    return jupytext.read(path, fmt="py:percent")


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return [t for t in cell.get("metadata", {}).get("tags", []) if t in TAGS]


def _validate_source(path: Path, nb: nbformat.NotebookNode) -> None:
    pending: int | None = None  # index of an exercise still waiting for its check
    n_exercises = 0
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        where = f"{path.name}, cell {i}"
        if len(tags) > 1:
            raise SourceError(f"{where}: one marker tag per cell, got {tags}")
        text = cell.source
        if cell.cell_type == "code" and "exercise" not in tags and BEGIN in text:
            raise SourceError(f"{where}: a solution block outside an exercise cell")
        if "exercise" in tags:
            if pending is not None:
                raise SourceError(f"{where}: exercise of cell {pending} has no check cell")
            _, _, blocks = split_solution(text)
            if not blocks:
                raise SourceError(f"{where}: an exercise cell without {BEGIN!r}")
            pending, n_exercises = i, n_exercises + 1
        elif "check" in tags:
            if pending is None:
                raise SourceError(f"{where}: a check cell after no exercise")
            pending = None
        if cell.cell_type == "code":
            student = split_solution(text)[0] if "exercise" in tags else text
            for variant_text in (student, split_solution(text)[1]):
                try:
                    ast.parse(variant_text)
                except SyntaxError as err:
                    raise SourceError(f"{where}: not valid Python: {err}") from None
    if pending is not None:
        raise SourceError(f"{path.name}: exercise of cell {pending} has no check cell")
    if n_exercises == 0:
        raise SourceError(f"{path.name}: no exercise")


def notebook(path: Path, variant: str) -> nbformat.NotebookNode:
    """The ``variant`` (``"student"`` or ``"answers"``) build of source ``path``."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} not in {VARIANTS}")
    src = read_source(path)
    _validate_source(path, src)
    cells = []
    for i, cell in enumerate(src.cells):
        tags = _tags(cell)
        if "solution" in tags and variant == "student":
            continue
        text = cell.source.strip("\n")
        if "exercise" in tags:
            student, answer, _ = split_solution(text)
            text = student if variant == "student" else answer
        metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "markdown":
            new = new_markdown_cell(text, metadata=metadata)
        else:
            new = new_code_cell(text, metadata=metadata)
        new.id = f"cell-{i:02d}"
        cells.append(new)
    nb = new_notebook(cells=cells, metadata=dict(_METADATA))
    nbformat.validate(nb)
    return nb


def target(path: Path, variant: str) -> Path:
    """Where the ``variant`` build of source ``path`` is committed."""
    return (STUDENT_DIR if variant == "student" else ANSWER_DIR) / f"{path.stem}.ipynb"


def render(nb: nbformat.NotebookNode) -> str:
    """The bytes a built notebook is written with."""
    return nbformat.writes(nb) + "\n"


def build(path: Path, variant: str, directory: Path | None = None) -> Path:
    """Write the ``variant`` build of ``path`` (into ``directory`` when given)."""
    out = target(path, variant) if directory is None else Path(directory) / f"{path.stem}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(notebook(path, variant)), encoding="utf-8")
    return out


def inject_solutions(
    student: nbformat.NotebookNode, answers: nbformat.NotebookNode
) -> nbformat.NotebookNode:
    """A copy of ``student`` whose exercise cells hold the answer key's (matched by cell id):
    what a learner who solved every exercise has."""
    by_id = {c.id: c for c in answers.cells}
    out = nbformat.from_dict(student)
    n = 0
    for cell in out.cells:
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            cell.source = by_id[cell.id].source
            n += 1
    if n == 0:
        raise SourceError("no exercise cell to inject a solution into")
    return out


def solution_blocks(path: Path) -> list[str]:
    """Every solution text of a source: the blocks of its exercise cells and its
    ``solution`` cells."""
    out: list[str] = []
    for cell in read_source(path).cells:
        tags = _tags(cell)
        if "exercise" in tags:
            out.extend(split_solution(cell.source)[2])
        elif "solution" in tags:
            out.append(cell.source)
    return out


def stale(prefixes: Sequence[str] = ()) -> list[Path]:
    """Built notebooks that differ from what their source builds to (or are missing)."""
    out = []
    for path in sources(prefixes):
        for variant in VARIANTS:
            t = target(path, variant)
            if not t.exists() or t.read_text(encoding="utf-8") != render(notebook(path, variant)):
                out.append(t)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="build only sources starting so")
    parser.add_argument("--check", action="store_true", help="exit 1 if a build is stale")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.prefixes)
        for t in bad:
            print(f"stale: {t}", file=sys.stderr)
        return 1 if bad else 0
    for path in sources(args.prefixes):
        for variant in VARIANTS:
            print(build(path, variant))
    names = {p.stem for p in sources()}
    for d in (STUDENT_DIR, ANSWER_DIR):  # a built notebook whose source is gone
        for old in d.glob("[0-9][0-9]-*.ipynb"):
            if old.stem not in names:
                print(f"removing {old} (no source)")
                old.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
