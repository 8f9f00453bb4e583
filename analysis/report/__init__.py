"""What people look at: the static HTML site of fit results (``wmass report``) and its plots.

:mod:`~analysis.report.site` writes the site (:func:`write_report`, the ``wmass report``
subcommand); :mod:`~analysis.report.plots` and :mod:`~analysis.report.figures` draw the stacks,
pulls, impacts, scans, correlations, pull maps, templates and the m_W comparison on plain
arrays (physics style: :mod:`~analysis.report.style`), each with its ``.log``;
:mod:`~analysis.report.runplots` draws a run's figures, :mod:`~analysis.report.flags` its flags
box and goodness of fit, :mod:`~analysis.report.names` names nuisances by their physical
ranges, :mod:`~analysis.report.pages` gathers the pages' values and renders the jinja2
templates of ``templates/`` (autoescape: :mod:`~analysis.report.render`), and
:mod:`~analysis.report.files` makes every name from an input a safe file name or element id
(docs/report.md).
"""

from analysis.report.plots import (
    PALETTE,
    PLOTLY_JS,
    band_from_covariance,
    closure_plot,
    nuisance_page,
    project,
    stack_plot,
    unroll,
    write_plot_log,
    write_plotly_js,
    yields_table,
)
from analysis.report.site import ReportError, add_arguments, main, run_name, write_report

__all__ = [
    "PALETTE",
    "PLOTLY_JS",
    "ReportError",
    "add_arguments",
    "band_from_covariance",
    "closure_plot",
    "main",
    "nuisance_page",
    "project",
    "run_name",
    "stack_plot",
    "unroll",
    "write_plot_log",
    "write_plotly_js",
    "write_report",
    "yields_table",
]
