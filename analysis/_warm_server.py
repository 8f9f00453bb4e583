"""Imported by the forkserver of warm workers (:mod:`analysis.warmstart`): importing it
imports and warms what a histmaker worker needs, once, before any worker is forked, then
freezes it out of the garbage collector's full collections (:func:`analysis.warmstart.freeze_heap`),
so that what it imported stays shared with the workers it forks. Its workers report the versions
of packages they never import from the packages' metadata
(:func:`analysis.warmstart.report_versions_from_metadata`)."""

from analysis.warmstart import freeze_heap, report_versions_from_metadata, warm

warm()
report_versions_from_metadata()
freeze_heap()
