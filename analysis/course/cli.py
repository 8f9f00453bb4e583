"""``wmass course``: blinded samples for a class, and the class's results on the last day.

``wmass course generate --students roster.txt --secret-file secret.txt --out /shared/samples``
    one blinded sample per student (one name a line in the roster; ``#`` starts a comment),
    ``<out>/<student-slug>/``, each at the hidden mass of (secret, name); the directory is what
    ``WMASS_COURSE_SAMPLES`` points the notebooks to. Existing complete samples are kept.

``wmass course collect results/*.json --secret-file secret.txt --out class/``
    reads the students' result files (written by the long exercise), unblinds them with the
    secret and writes ``class/pulls.png`` (pull per student) and ``class/class.json`` (rows
    and the combination: weighted mean of fitted minus true, chi2/ndf), with provenance.

``wmass course slides SITE/RUN --team NAME --out slides/``
    a team's slides (``docs/course-slides.md``) filled from one run of its report site: m_W
    (blinded when the report was), goodness of fit, the largest impacts, the figures.

The secret is read from ``--secret-file``, else ``$WMASS_COURSE_SECRET``; it is never taken
from the command line (it would be in the shell history and in every output's provenance).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from analysis.course.blinding import (
    BLINDING_JSON,
    BlindingError,
    course_secret,
    make_student_sample,
    read_secret_file,
    student_slug,
)
from analysis.course.collect import collect

__all__ = ["add_arguments", "main", "read_roster"]


def read_roster(path: str | Path) -> list[str]:
    """The student names of a roster file: one a line, blank lines and ``#`` comments skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise BlindingError(f"{path}: cannot read the roster: {err}") from None
    names = [line.split("#", 1)[0].strip() for line in lines]
    names = [n for n in names if n]
    slugs: dict[str, str] = {}
    for n in names:
        s = student_slug(n)
        if s in slugs:
            raise BlindingError(f"{path}: {n!r} and {slugs[s]!r} share the directory {s!r}")
        slugs[s] = n
    if not names:
        raise BlindingError(f"{path}: no student names")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="course_command", metavar="ACTION", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    gen = sub.add_parser(
        "generate", help="one blinded sample per student of a roster", formatter_class=fmt
    )
    gen.add_argument("--students", type=Path, required=True, help="roster: one name a line")
    gen.add_argument("--out", type=Path, required=True, help="the shared samples directory")
    gen.add_argument("--events", type=int, default=200_000, help="MC events per sample")
    gen.add_argument("--seed", type=int, default=1, help="generator seed (same for all)")
    gen.add_argument("--jobs", type=int, default=1, help="processes per sample")
    gen.add_argument(
        "--secret-file",
        type=Path,
        default=None,
        help="the course secret (else $WMASS_COURSE_SECRET)",
    )
    col = sub.add_parser(
        "collect", help="unblind a class's results: pull plot, combination", formatter_class=fmt
    )
    col.add_argument("results", type=Path, nargs="+", help="the students' result JSON files")
    col.add_argument("--out", type=Path, default=Path("class"), help="output directory")
    col.add_argument(
        "--secret-file",
        type=Path,
        default=None,
        help="the course secret (else $WMASS_COURSE_SECRET)",
    )
    sl = sub.add_parser("slides", help="a team's slides from its report site", formatter_class=fmt)
    sl.add_argument("run", type=Path, help="one run of a report site: <site>/<run>")
    sl.add_argument("--out", type=Path, default=Path("slides"), help="output directory")
    sl.add_argument("--team", default="[Team name]", help="the team's name")
    sl.add_argument("--title", default="[project title]", help="the project's title")
    sl.add_argument("--members", nargs="*", default=[], help="the team's members")
    sl.add_argument("--school", default="[school, date]", help="the school and date")
    sl.add_argument("--figures", type=Path, nargs="*", default=[], help="the study's figures")


def _secret(args: argparse.Namespace) -> str:
    if args.secret_file is not None:
        return read_secret_file(args.secret_file)
    return course_secret(default=None)


def main(args: argparse.Namespace) -> int:
    if args.course_command == "slides":
        from analysis.course.slides import team_slides

        path = team_slides(
            args.run,
            args.out,
            team=args.team,
            title=args.title,
            members=args.members,
            school=args.school,
            study_figures=args.figures,
        )
        print(f"[course] wrote {path}")
        return 0
    secret = _secret(args)
    if args.course_command == "generate":
        for name in read_roster(args.students):
            path = args.out / student_slug(name)
            if (path / BLINDING_JSON).exists():
                print(f"[course] {path}: exists, kept")
                continue
            make_student_sample(
                path, name, secret, events=args.events, seed=args.seed, jobs=args.jobs
            )
            print(f"[course] {path}: blinded sample of {name!r}")
        return 0
    command = "wmass " + shlex.join(sys.argv[1:]) if sys.argv[1:] else None
    res = collect(args.results, secret, args.out, command=command)
    c = res.combination
    for s in res.students:
        print(f"[course] {s.student:24s} pull {s.pull:+.2f}")
    print(
        f"[course] {c.n} students: fitted - true = {c.mean:+.1f} +- {c.error:.1f} MeV, "
        f"chi2/ndf = {c.chi2:.1f}/{c.ndf}; pulls mean {c.pull_mean:+.2f} width {c.pull_width:.2f}"
    )
    print(f"[course] wrote {res.plot_path} and {res.json_path}")
    return 0
