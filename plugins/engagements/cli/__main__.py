"""``python -m engagements.cli``: the same command line as the ``engagements`` script."""

from __future__ import annotations

import sys

from engagements.cli import main

sys.exit(main())
