import sys

from anchorfit.cli import main

sys.exit(main())
