"""The course room: blinding, the class's results, and where the notebooks run.

- :mod:`~analysis.course.blinding`: the hidden mass of each student's pseudo-data, derived from
  a course secret and the student's name (HMAC-SHA256), blinded display, unblinding;
- :mod:`~analysis.course.outputs`: ``wmass report`` / ``inspect`` / ``fit`` show the blinded m_W
  while the student's sample is blinded;
- :mod:`~analysis.course.slides`: ``wmass course slides``, a team's slides from its report;
- :mod:`~analysis.course.collect`: ``wmass course collect``, the pull plot and combination of a
  class's results;
- :mod:`~analysis.course.facility`: the shared samples directory, the Dask client and the
  dashboard link on a laptop or an analysis facility;
- :mod:`~analysis.course.cli`: ``wmass course generate | collect | slides``.

The notebooks themselves are in ``notebooks/`` (sources in ``notebooks/src/``).
"""

from analysis.course.blinding import (
    PRACTICE_SECRET,
    BlindingError,
    StudentSample,
    blind_text,
    blinded_mw,
    course_secret,
    display_offset_mev,
    hidden_mass_mev,
    make_student_sample,
    student_name,
    student_slug,
    unblind,
)
from analysis.course.collect import collect, combine, read_result, write_result
from analysis.course.facility import (
    course_client,
    course_sample,
    dashboard_link,
    dask_backend,
    gateway_address,
    work_dir,
)
from analysis.course.outputs import blind_result, blinded_stdout, blinding_for

__all__ = [
    "PRACTICE_SECRET",
    "BlindingError",
    "StudentSample",
    "blind_result",
    "blind_text",
    "blinded_mw",
    "blinded_stdout",
    "blinding_for",
    "collect",
    "combine",
    "course_client",
    "course_sample",
    "course_secret",
    "dashboard_link",
    "dask_backend",
    "gateway_address",
    "display_offset_mev",
    "hidden_mass_mev",
    "make_student_sample",
    "read_result",
    "student_name",
    "student_slug",
    "unblind",
    "work_dir",
    "write_result",
]
