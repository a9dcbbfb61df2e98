"""Anchor design: what a detector's levels should use, and how its current anchors fare.

Sits above the detector model, the ERF estimator, clustering and the datasets (it reads all four)
and below the CLI and the report writers. One module per concept:

- ``findings``: the catalogue of checks (stable codes AF1xx/AF2xx/AF3xx), each with its runner,
  and the ``Finding`` every check, the planner and the anchor-free analysis report.
- ``plan``: per-level anchors from a rule (S3FD, SSD, octave, FCOS ranges) and a dataset.
- ``anchor_free``: which object sizes an anchor-free level's assigner lets it learn, remedies.
- ``audit``: run the catalogue on a detector (and a dataset).
- ``compare``: anchor sets side by side with the verdict for the detector's assigner.
- ``export``: anchors written back into each detector format.
- ``erf_network``: the network a detector's ERF runs on (its canvas, seeded weights).
"""
