"""Entry point for `python -m mnistlab`."""

import sys

from mnistlab.cli import main

sys.exit(main())
