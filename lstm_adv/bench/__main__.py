"""``python -m lstm_adv.bench``: the command (`lstm_adv.bench.main`), or one measurement's worker
process (``--worker MODE FLOATX REPS SHAPES_JSON``, started by the driver: `lstm_adv.bench.measure.worker`)."""

import json
import sys

from ..common.lifecycle import cli_entry
from . import main
from .measure import worker

if len(sys.argv) > 1 and sys.argv[1] == "--worker":
    print(json.dumps(worker(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                            json.loads(sys.argv[5]) if len(sys.argv) > 5 else None)))
    sys.exit(0)
sys.exit(cli_entry(main)(sys.argv[1:]))
