"""The m_W bias benchmark's bookkeeping: setup variants fitted on the same samples are compared
PE by PE (the sample's own fluctuation cancels), and bad ``--setup-variant`` options stop
before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.mwbias.cli import parse_args
from benchmarks.mwbias.stats import chain_tables, setup_variant_shifts


def _rows(rng: np.random.Generator, n: int, shift_mev: float) -> list[dict]:
    """``n`` samples at 80.379 GeV fitted with the plain setup and with a variant that moves
    m_W by ``shift_mev`` plus 1 MeV of noise; the samples themselves scatter by 150 MeV."""
    rows = []
    for seed in range(n):
        plain = 80379.0 + rng.normal(0.0, 150.0)
        for variant, value, error in (
            ("bb-lite", plain, 150.0),
            ("bb-lite/other", plain + shift_mev + rng.normal(0.0, 1.0), 151.0),
        ):
            rows.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "mass_true_gev": 80.379,
                    "value_mev": value,
                    "error_mev": error,
                    "pull": (value - 80379.0) / error,
                    "status": "converged",
                }
            )
    return rows


def test_a_setup_variant_is_compared_on_the_same_samples():
    rows = _rows(np.random.default_rng(3), 40, shift_mev=-4.0)
    shifts = setup_variant_shifts(rows)["bb-lite/other"]
    assert shifts["n"] == 40
    # the samples scatter by 150 MeV, yet the pairs measure the 4 MeV shift to ~0.2 MeV
    assert shifts["shift_err_mev"] < 0.3
    assert abs(shifts["shift_mev"] + 4.0) < 3 * shifts["shift_err_mev"]
    assert shifts["error_change_mev"] == pytest.approx(1.0)


def test_setup_variants_get_their_own_table_after_the_plain_setup():
    rows = _rows(np.random.default_rng(4), 5, shift_mev=0.0)
    tables = chain_tables(rows, [80.379], 80.379)
    assert list(tables) == ["bb-lite", "bb-lite/other"]
    assert tables["bb-lite/other"]["n"] == 5


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("noequals", "give NAME=ARGS"),
        ("a/b=--signal-template raw", "give NAME=ARGS"),
        ("x=--signal-template nonsense", "invalid choice"),
    ],
)
def test_a_bad_setup_variant_stops_before_anything_runs(option, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--setup-variant", option], "doc")
    assert message in capsys.readouterr().err


def test_a_setup_variant_name_may_not_repeat(capsys):
    argv = [
        "--setup-variant",
        "x=--signal-template raw",
        "--setup-variant",
        "x=--signal-template raw",
    ]
    with pytest.raises(SystemExit):
        parse_args(argv, "doc")
    assert "given twice" in capsys.readouterr().err
