"""``python -m omniq_trio``: the ``omniq-trio`` command."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
