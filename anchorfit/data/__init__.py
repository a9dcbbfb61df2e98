"""Dataset boxes: annotation readers, the Boxes table, resize policies, validation, statistics.

Everything downstream (clustering, metrics, plans) works on box sizes in *network input* pixels;
this package is where annotation files become those, the way the detector's data loader would
resize them.
"""

from anchorfit.data.boxes import (POLICIES, Boxes, ResizeSpec, ValidationReport, to_input,
                                  validate)
from anchorfit.data.io import FORMATS, detect_format, read_annotations

__all__ = ["FORMATS", "POLICIES", "Boxes", "ResizeSpec", "ValidationReport", "detect_format",
           "read_annotations", "to_input", "validate"]
