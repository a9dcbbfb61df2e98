"""anchorfit: choose detector anchors from exact receptive fields, ERFs and dataset boxes.

The library does all the work; the ``anchorfit`` command (``anchorfit.cli``) only parses and prints.
"""

from anchorfit.errors import AnchorfitError

__all__ = ["AnchorfitError", "__version__"]
__version__ = "0.1.0"
