"""``python -m acquisition.cli``: the ``livesr`` command line."""

import sys

from acquisition.cli.main import main

sys.exit(main())
