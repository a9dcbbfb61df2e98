"""``python -m anchorfit``: the CLI, with Ctrl-C during start-up an exit 130, not a traceback."""

import sys

try:
    from anchorfit.cli import main
except KeyboardInterrupt:
    sys.stderr.write("anchorfit: interrupted\n")
    sys.exit(130)

sys.exit(main())
