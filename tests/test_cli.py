"""The ``wmass`` command explains itself and refuses what it cannot do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.cli import COMMANDS, main


def test_help_lists_every_step_of_the_chain(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: wmass" in capsys.readouterr().out


def test_unknown_command_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "analysis.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "From CMS NanoAOD to a measured W-boson mass" in out.stdout
