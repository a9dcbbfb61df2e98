"""Every figure anchorfit draws (matplotlib, Agg backend; the format follows the file suffix).

One module per subject, imported directly (this package imports none of them, so that a command
drawing box plots does not pay for torch, which the ERF figures' result types pull in):

- ``design``: the planner's ladder, box scatter with anchor sets, grid recall by size (plan,
  audit, compare);
- ``boxes``: a dataset's box-size histogram and w-h scatter (boxes, kmeans);
- ``erf``: ERF heatmaps, one panel per level (erf).
"""
