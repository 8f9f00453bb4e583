"""The ``wmass`` command: one subcommand per step of the chain (see README.md).

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``main(args) -> int``. Only the chosen subcommand's module is imported, so ``wmass generate``
does not pay for importing coffea or JAX. A :class:`~fit.errors.WMassError` that stops a
subcommand is printed as one line, ``wmass COMMAND: error: MESSAGE``, and ``wmass`` returns its
kind's ``exit_code`` (:data:`EXIT_CODES`, shown by ``wmass --help``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from fit.errors import WMassError

__all__ = ["COMMANDS", "EXIT_CODES", "load_command", "main"]

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("analysis.generate.samples", "write synthetic NanoAOD samples with known truth"),
    "calibrate": (
        "analysis.calibrate.cli",
        "measure muon scale factors and momentum scale on Z->mumu (correctionlib)",
    ),
    "histmaker": ("analysis.histmaker", "fill histograms with all variations from NanoAOD"),
    "setup-fit": ("analysis.setup_fit", "post-process histograms into a fit input"),
    "fit": ("fit.cli", "profile-likelihood fit: POIs, pulls, impacts, GOF"),
    "report": ("analysis.report.site", "write a static HTML site of a fit result"),
    "inspect": ("analysis.inspect", "show the contents and provenance of any output file"),
    "demo": ("analysis.demo", "run the whole chain on a small generated sample"),
    "course": (
        "analysis.course.cli",
        "blinded course samples per student; unblind a class's results (pulls, combination)",
    ),
}

#: exit code -> the kinds of error (``exit_code``) that return it; docs/architecture.md has the
#: same table, and tests/test_errors.py checks both against the classes
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "any other WMassError (the base; FitError, the fit's base)",
    2: "ConfigError, or a wrong command line (argparse)",
    3: "BadInputFile",
    4: "MissingBranch, MistypedBranch",
    5: "BadCorrections",
    6: "FitInputError (WorkspaceError)",
    7: "FitDidNotConverge",
    8: "OutputError",
    9: "RetryLimitExceeded",
    10: "ChunkFailed",
    11: "CheckpointMismatch",
    12: "TooFewEvents",
    13: "ReportError",
    14: "BlindingError",
    130: "interrupted (Ctrl-C)",
}

_CHAIN = """\
typical chain:
  wmass generate  --out samples/ --events 200000
  wmass calibrate --datasets samples/datasets.yaml --out calib.json   (optional)
  wmass histmaker --analysis wmass --datasets samples/datasets.yaml --out hists.h5
                  [--corrections calib.json]
  wmass setup-fit hists.h5 --out fitinput.h5
  wmass fit       fitinput.h5 --out fitresult.h5 --impacts --global-impacts
  wmass report    fitresult.h5 hists.h5 --out site/
  wmass inspect   hists.h5 --json

'wmass COMMAND --help' explains each step.
"""
_CODES = "\n".join(f"  {code:>3}  {kinds}" for code, kinds in EXIT_CODES.items())
EPILOG = (
    f"{_CHAIN}\nexit codes (an error prints one line, 'wmass COMMAND: error: MESSAGE'):\n{_CODES}\n"
)


def load_command(name: str) -> ModuleType | None:
    """The module of subcommand ``name``, or None when it is not built yet."""
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        return None
    if not (hasattr(module, "add_arguments") and hasattr(module, "main")):
        return None
    return module


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already says its default,
    or the default is ``None``, ``False`` or suppressed (nothing worth saying)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "(default:" in text or action.default in (None, False):
            return text
        if action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action) or text


def _parser(selected: str | None) -> tuple[argparse.ArgumentParser, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="wmass",
        description="From CMS NanoAOD to a measured W-boson mass.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, Any] = {}
    for name, (_, help_) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            formatter_class=_HelpFormatter,
        )
        if name == selected:
            module = load_command(name)
            if module is not None:
                module.add_arguments(p)
                first = (module.__doc__ or help_).strip().split("\n\n")[0]
                p.description = first.replace("``", "")
            modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wmass`` console script."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if a in COMMANDS), None)
    if from_command_line and selected in ("histmaker", "demo"):
        # a local cluster's workers fork from a server that imports the stack now, beside
        # this process's own imports (analysis.warmstart; the command ends after its run)
        from analysis.warmstart import start_early

        start_early(argv[argv.index(selected) + 1 :])
    parser, modules = _parser(selected)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = modules.get(args.command)
    if module is None:
        print(f"wmass {args.command}: not built yet (see the open issues)", file=sys.stderr)
        return 2
    try:
        if args.command == "fit":  # a fit of a blinded course sample prints m_W blinded
            from analysis.course.outputs import blinded_stdout

            with blinded_stdout(args.input):
                return int(module.main(args) or 0)
        return int(module.main(args) or 0)
    except WMassError as err:
        print(f"wmass {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"wmass {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if from_command_line:
            # the process ends next: its last garbage collections then have nothing to walk
            # (0.8-1.3 s over the ~300k objects a histmaker run leaves, measured; 0.1 s frozen)
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
