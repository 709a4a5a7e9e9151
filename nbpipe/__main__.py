"""``python -m nbpipe``: the same as the ``nbpipe`` command."""

import sys

from nbpipe.cli import console

sys.exit(console())
