"""``python -m lstm_adv.visualize model=RUN_DIR_OR_NPZ [key=value ...]``: adversarial examples as words.

The entry point only; the visualiser (the paper's section 7: Tables 2 and 3) is
`lstm_adv.analysis.visualize`, whose docstring explains the rows, and ``--help`` lists the keys.
"""

import sys

from .analysis.visualize.options import help_text
from .common.options import wants_help


def main(argv=None):
    """Run the command line (``argv`` default: ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(help_text())
        return 0
    from .analysis.visualize.main import main as _main   # imports PyTensor and SciPy: not for --help
    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
