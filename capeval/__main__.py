"""``python -m capeval``: the same as the ``capeval`` command."""

import sys

from .cli import main

sys.exit(main())
