"""``python -m tpd_qa.cli`` runs the command line (as ``python -m tpd_qa`` does)."""

import sys

from tpd_qa.cli import main

sys.exit(main())
