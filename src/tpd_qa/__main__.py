"""``python -m tpd_qa`` runs the command line."""

import sys

from tpd_qa.cli import main

sys.exit(main())
