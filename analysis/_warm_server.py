"""Imported by the forkserver of warm workers (:mod:`analysis.warmstart`): importing it
imports and warms what a histmaker worker needs, once, before any worker is forked."""

from analysis.warmstart import warm

warm()
