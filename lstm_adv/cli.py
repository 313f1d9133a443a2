"""Console scripts: ``lstm-adv-train`` ... run exactly what ``python -m lstm_adv.<module>`` runs.

Each function takes no arguments, reads ``sys.argv[1:]`` and returns the exit status (the
``[project.scripts]`` table of ``pyproject.toml`` points at them).
"""

import sys

from .common.lifecycle import cli_entry


def train():
    from . import train as mod  # each script imports only its own command (fast start, fast --help)
    return cli_entry(mod.main)()


def results():
    from . import results as mod  # only this command (fast start)
    return mod.main()


def sweep():
    from . import sweep as mod  # only this command (fast start)
    return mod.main()


def visualize():
    from . import visualize as mod  # only this command (fast start)
    return mod.main()


def data():
    from .data.imdb import data_main  # only this command (fast start)
    return data_main()


def embeddings():
    from . import embeddings as mod  # only this command (fast start)
    return mod.main()


def predict():
    from . import predict as mod  # only this command (fast start)
    return mod.main()


def bench():
    from . import bench as mod  # only this command (fast start)
    return cli_entry(mod.main)(sys.argv[1:])


def attack():
    from . import attack as mod  # only this command (fast start)
    return cli_entry(mod.main)()


#: script name -> function here; pyproject.toml's [project.scripts] lists the same (a test checks).
SCRIPTS = {"lstm-adv-train": "train", "lstm-adv-results": "results", "lstm-adv-sweep": "sweep",
           "lstm-adv-visualize": "visualize", "lstm-adv-data": "data", "lstm-adv-embeddings": "embeddings",
           "lstm-adv-bench": "bench", "lstm-adv-attack": "attack", "lstm-adv-predict": "predict"}
