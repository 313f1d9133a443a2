"""What an ASCC update costs against a clean one and the paper's step (issue 41's goal: at most K + 2 times).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python experiments/bench_ascc.py [rounds=5] [updates=10]

The study's shape: wdim=300, hdim=128, batches of 16 real IMDB training reviews cut to 100 tokens
(``maxlen=100 maxlen_mode=truncate``, the IMDB cache or archive as ``python -m lstm_adv.train``
finds it), n_words=10000, the WordNet substitution table of that vocabulary (ascc_max_subs=16).
Three models, mode C, float32: clean (adv=0), the paper's step (eps=0.5), ASCC (ascc=1
adv_emb_grad=1, the defaults K=10). Rounds interleave the models, each round timing ``updates``
updates of each on the same batches after one warm-up update; printed: the median over rounds of
the ms per update, and the ratios to clean.
"""

import sys
import time

import numpy as np

from lstm_adv.config import parse_args
from lstm_adv.core.backend import flush_denormals, limit_blas_threads
from lstm_adv.core.compiled import Model
from lstm_adv.data import load_dataset, prepare_data
from lstm_adv.data.synonyms import SubstitutionTable, load_synonyms

SHAPE = ["preset=authors", "wemb_init=random", "maxlen=100", "maxlen_mode=truncate", "mode=C", "progress=0"]
MODELS = {"clean": ["adv=0"], "paper eps=0.5": ["eps=0.5"], "ascc K=10": ["ascc=1", "adv_emb_grad=1"]}


def main(argv):
    opts = dict(a.split("=", 1) for a in argv)
    rounds, updates = int(opts.get("rounds", 5)), int(opts.get("updates", 10))
    limit_blas_threads(1)
    flush_denormals()
    data = load_dataset(parse_args(SHAPE))
    n_words = min(10000, len(data.words))
    table = SubstitutionTable(load_synonyms("wordnet"), data.words, n_words)
    print(f"vocabulary: IMDB, {n_words} words; WordNet substitutes: {table.info()['words_with_substitutes']} words, "
          f"mean {table.info()['mean_substitutes']}", flush=True)
    rng = np.random.default_rng(0)
    batches = [prepare_data([data.train.seqs[i] for i in idx], data.train.labels[idx], "float32")
               for idx in (rng.choice(len(data.train), 16, replace=False) for _ in range(updates))]
    print("tokens per batch:", [int(b[1].sum()) for b in batches], flush=True)
    models = {}
    for name, keys in MODELS.items():
        cfg = parse_args(SHAPE + keys)
        model = Model(cfg, n_words, substitutions=table.padded(cfg.ascc_max_subs) if cfg.ascc else None)
        t0 = time.perf_counter()
        model.train_step(*batches[0])   # compiles
        print(f"{name}: compiled and first update in {time.perf_counter() - t0:.1f}s", flush=True)
        models[name] = model
    ms = {name: [] for name in models}
    for r in range(rounds):
        for name, model in models.items():
            t0 = time.perf_counter()
            for b in batches:
                model.train_step(*b)
            ms[name].append(1000 * (time.perf_counter() - t0) / len(batches))
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.0f} ms" for n, v in ms.items()), flush=True)
    clean = np.median(ms["clean"])
    for name, values in ms.items():
        print(f"{name:>14}: {np.median(values):7.1f} ms/update (median of {rounds} rounds of {updates}), "
              f"{np.median(values) / clean:5.2f} x clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
