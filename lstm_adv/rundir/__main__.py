"""``python -m lstm_adv.rundir publish SRC DEST [root=DIR]`` (`lstm_adv.rundir.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
