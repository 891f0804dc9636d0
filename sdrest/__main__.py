"""``python -m sdrest`` runs the command line."""

import sys

from sdrest.cli import main

sys.exit(main())
