"""``python -m lstm_adv.data fetch|build|export [key=value ...]``: the IMDB data's command line.

See `lstm_adv.data.imdb.data_main` (``--help`` lists the commands and keys).
"""

import sys

from .imdb import data_main

if __name__ == "__main__":
    sys.exit(data_main())
