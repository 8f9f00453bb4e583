"""Imported by the forkserver of warm workers (:mod:`analysis.warmstart`): importing it
imports and warms what a histmaker worker needs, once, before any worker is forked, then
freezes it out of the garbage collector's full collections (:func:`analysis.warmstart.young_heap`)."""

from analysis.warmstart import warm, young_heap

warm()
with young_heap(permanent=True):  # what it imported stays shared with the workers it forks
    pass
