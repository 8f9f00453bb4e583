"""Imported by the forkserver of warm workers (:mod:`analysis.warmstart`): importing it
imports and warms what a histmaker worker needs, once, before any worker is forked, then
freezes it out of the garbage collector's full collections (:func:`analysis.warmstart.freeze_heap`),
so that what it imported stays shared with the workers it forks."""

from analysis.warmstart import freeze_heap, warm

warm()
freeze_heap()
