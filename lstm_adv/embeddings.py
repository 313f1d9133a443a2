"""``python -m lstm_adv.embeddings train [key=value ...]``: word2vec vectors trained on IMDB.

The entry point only; the code (loading word2vec files into ``Wemb``, training the IMDB
vectors) is `lstm_adv.data.embeddings`, whose ``--help`` lists the keys.
"""

import sys

from .data.embeddings import main as _main


def main(argv=None):
    """Run the command line (``argv`` default: ``sys.argv[1:]``); returns the exit status."""
    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
