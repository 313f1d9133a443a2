"""``python -m lstm_adv.results RUNS_DIR [RUNS_DIR ...] [out=DIR] [plot=0|1] [by=KEY,KEY]``: Table 1.

The entry point only; ``--help`` prints the reference (`lstm_adv.analysis.results`).
"""

import sys

from .analysis.results import main as _main


def main(argv=None):
    """Run the command line (``argv`` default: ``sys.argv[1:]``); returns the exit status."""
    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
