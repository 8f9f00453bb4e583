"""``wmass course collect``: unblinded pulls and the class combination, on made-up results."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from analysis.course import BlindingError, StudentSample, combine, hidden_mass_mev, write_result
from analysis.course import cli as course_cli
from analysis.course.collect import collect, read_result

SECRET = "class-of-2026"
# name -> (fitted minus true in MeV, error in MeV): made up
MADE_UP = {
    "Ada Lovelace": (12.0, 20.0),
    "Emmy Noether": (-30.0, 25.0),
    "Lise Meitner": (5.0, 10.0),
    "Chien-Shiung Wu": (40.0, 30.0),
}


def _sample(tmp_path, name):
    return StudentSample(tmp_path, name, 0.0, "x", practice=False)


@pytest.fixture
def results(tmp_path):
    paths = []
    for name, (residual, err) in MADE_UP.items():
        fitted = hidden_mass_mev(name, SECRET) + residual
        paths.append(write_result(tmp_path / f"{name}.json", _sample(tmp_path, name), fitted, err))
    return paths


def test_the_combination_is_an_independent_weighted_mean(results, tmp_path):
    out = collect(results, SECRET, tmp_path / "class")
    # by hand: sum r/s^2 / sum 1/s^2 = (12/400 - 30/625 + 5/100 + 40/900) / (1/400 + ...)
    num = 12 / 400 - 30 / 625 + 5 / 100 + 40 / 900
    den = 1 / 400 + 1 / 625 + 1 / 100 + 1 / 900
    mean = num / den
    chi2 = sum((r - mean) ** 2 / s**2 for r, s in MADE_UP.values())
    c = out.combination
    assert c.n == 4 and c.ndf == 3
    assert c.mean == pytest.approx(mean, rel=1e-12)
    assert c.mean == pytest.approx(5.0255661, abs=1e-6)  # the number itself
    assert c.error == pytest.approx(1 / math.sqrt(den), rel=1e-12)
    assert c.chi2 == pytest.approx(chi2, rel=1e-12)
    pulls = [r / s for r, s in MADE_UP.values()]
    assert c.pull_mean == pytest.approx(np.mean(pulls))
    assert c.pull_width == pytest.approx(np.std(pulls, ddof=1))
    by_name = {s.student: s for s in out.students}
    for name, (r, s) in MADE_UP.items():
        assert by_name[name].truth_mev == hidden_mass_mev(name, SECRET)
        assert by_name[name].pull == pytest.approx(r / s)


def test_collect_writes_the_plot_and_the_json_with_provenance(results, tmp_path):
    out = collect(results, SECRET, tmp_path / "class", command="wmass course collect ...")
    assert out.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads(out.json_path.read_text())
    assert record["meta"]["command"] == "wmass course collect ..."
    assert record["meta"]["inputs"] == [str(p) for p in results]
    assert record["combination"]["chi2_ndf"] == pytest.approx(out.combination.chi2 / 3)
    assert len(record["students"]) == 4
    assert not list((tmp_path / "class").glob(".*tmp"))  # atomic: no temporary left


def test_a_wrong_secret_gives_wrong_truths_and_duplicates_are_refused(results, tmp_path):
    wrong = collect(results, "not-the-secret", tmp_path / "wrong")
    assert abs(wrong.combination.mean) > 1.0 or wrong.combination.chi2 > 10
    dup = write_result(tmp_path / "dup.json", _sample(tmp_path, " ada lovelace"), 80379.0, 10.0)
    with pytest.raises(BlindingError, match="second result"):
        collect([*results, dup], SECRET, tmp_path / "dup")


def test_result_files_are_validated(tmp_path):
    with pytest.raises(BlindingError, match="not a measurement"):
        write_result(tmp_path / "x.json", _sample(tmp_path, "A"), 80379.0, 0.0)
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(BlindingError, match="not a course result"):
        read_result(tmp_path / "bad.json")


def test_combine_small_cases():
    c = combine([10.0, -10.0], [10.0, 10.0])
    assert (c.mean, c.chi2, c.ndf) == (0.0, 2.0, 1)
    one = combine([3.0], [2.0])
    assert one.mean == 3.0 and one.error == 2.0 and one.ndf == 0 and math.isnan(one.chi2_ndf)
    with pytest.raises(BlindingError):
        combine([1.0], [0.0])


def test_the_cli_collects(results, tmp_path, capsys):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n")
    parser = argparse.ArgumentParser()
    course_cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "collect",
            *map(str, results),
            "--secret-file",
            str(secret_file),
            "--out",
            str(tmp_path / "c"),
        ]
    )
    assert course_cli.main(args) == 0
    text = capsys.readouterr().out
    assert "4 students" in text and "+5.0 +- " in text
    assert (tmp_path / "c" / "class.json").exists()


def test_the_roster(tmp_path):
    roster = tmp_path / "roster.txt"
    roster.write_text("Ada Lovelace\n# a comment\n\nEmmy Noether  # inline\n")
    assert course_cli.read_roster(roster) == ["Ada Lovelace", "Emmy Noether"]
    roster.write_text("Ada Lovelace\nada  lovelace\n")
    with pytest.raises(BlindingError, match="share the directory"):
        course_cli.read_roster(roster)


#: the entry the coordinator adds to analysis.cli.COMMANDS
COMMAND_ENTRY = (
    "analysis.course.cli",
    "blinded course samples per student; unblind a class's results (pulls, combination)",
)


def test_wmass_course_collect_through_the_wmass_command(results, tmp_path, monkeypatch, capsys):
    from analysis import cli

    monkeypatch.setitem(cli.COMMANDS, "course", COMMAND_ENTRY)
    monkeypatch.setenv("WMASS_COURSE_SECRET", SECRET)
    out = tmp_path / "via-wmass"
    rc = cli.main(["course", "collect", *map(str, results), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "class.json").read_text())["combination"]["n"] == 4
    monkeypatch.delenv("WMASS_COURSE_SECRET")
    assert (
        cli.main(["course", "collect", str(results[0]), "--out", str(out)])
        == BlindingError.exit_code
    )
    assert "no course secret" in capsys.readouterr().err
