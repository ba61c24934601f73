"""`python -m anydiff`: the `anydiff` command line."""

import sys

from anydiff.cli import main

if __name__ == "__main__":  # `multiprocessing` (spawn) imports this module again in its workers
    sys.exit(main())
