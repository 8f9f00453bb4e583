"""The modules of ``benchmarks/mw_bias.py`` (the W-mass pseudo-experiment benchmark), by idea:

- :mod:`~benchmarks.mwbias.common`: constants, CSV fields, failure rows, pulls;
- :mod:`~benchmarks.mwbias.worker`: what the spawned workers run (a full-chain PE, the
  calibration of a seed for ``--calibrate``, the fit-only sample and toys);
- :mod:`~benchmarks.mwbias.pool`: the worker pool (bounded in-flight tasks, restart on a
  dead worker);
- :mod:`~benchmarks.mwbias.stats`: pulls, widths, linearity, paired slopes, timings;
- :mod:`~benchmarks.mwbias.output`: markdown tables, CSV/JSON, provenance, ``--tables``.

The command line (and its documentation) stays in ``benchmarks/mw_bias.py``.
"""
