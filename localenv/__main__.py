"""``python -m localenv``: see :mod:`localenv.environment`."""

import sys

from localenv.environment import main

sys.exit(main())
