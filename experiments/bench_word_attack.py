"""The word attack's speed: PWWS on a trained run's test reviews, one core.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python experiments/bench_word_attack.py model=RUN [n=1000] [rounds=3] [peer_n=20]

Prints (and writes to ``out=``, default bench_word_attack.json):

1. the attack as ``python -m lstm_adv.attack`` runs it on ``n`` seeded test reviews (the sample
   every model of a study meets): seconds, reviews per second, success rate;
2. the peer: the same search scoring candidates with the model's ``f_pred_prob`` instead of the
   per-word input projections (`lstm_adv.wordattack.ProjectedProbs`), against the projected one, in
   interleaved rounds of ``peer_n`` reviews each (the same reviews in both), so that both meet the
   same machine load; the ratio is the speed-up of the projections.

One BLAS thread (`lstm_adv.core.backend.limit_blas_threads`), as training and the attack use.
"""

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_adv.common import options as _options
from lstm_adv.common.lifecycle import cli_entry
from lstm_adv.common.options import option as _opt


@dataclass(frozen=True)
class Options:
    model: str = _opt("", "run directory (required)")
    n: int = _opt(1000, "reviews of the full attack (0 = skip it)")
    rounds: int = _opt(3, "interleaved rounds of the peer comparison (0 = skip it)")
    peer_n: int = _opt(20, "reviews per round")
    out: str = _opt("bench_word_attack.json", "where the figures go")


def main(argv):
    opts = _options.parse(Options, argv)
    from lstm_adv.analysis.visualize.inputs import load_data, load_run
    from lstm_adv.core.backend import limit_blas_threads
    from lstm_adv.core.compiled import Model
    from lstm_adv.data.synonyms import SubstitutionTable, load_synonyms
    from lstm_adv.wordattack import ProjectedProbs
    from lstm_adv.wordattack.runner import attack_one, run_attack, sample_indices
    from lstm_adv.wordattack.search import pwws

    limit_blas_threads(1)
    run = load_run(opts.model)
    data = load_data(run.cfg, run.words, run.data_cache)
    model = Model(run.cfg, run.n_words, run.params, word_counts=run.word_counts)
    table = SubstitutionTable(load_synonyms(run.cfg.synonyms), run.words, run.n_words)
    record = {"model": str(run.path), "n_test": len(data.test)}
    fast = ProjectedProbs(model)
    fast(np.zeros((2, 1), dtype=np.int64), np.ones((2, 1), dtype=run.cfg.floatX))   # compile outside the timing
    model.f_pred_prob(np.zeros((2, 1), dtype=np.int64), np.ones((2, 1), dtype=run.cfg.floatX))
    if opts.n:
        out = Path(f"/tmp/bench_word_attack_{time.time_ns()}")
        t0 = time.perf_counter()
        s = run_attack(out, model.f_pred_prob, data.test, table, {"method": "pwws", "n": opts.n, "seed": 1},
                       search_probs=fast, log=lambda line: None)
        wall = time.perf_counter() - t0
        record["attack"] = {"n": s["n"], "seconds": round(wall, 1), "reviews_per_s": round(s["n"] / wall, 3),
                            "success_rate": s["success_rate"], "words_changed": s["words_changed"],
                            "queries": s["queries"]}
        print(f"PWWS on {s['n']} test reviews: {wall:.0f} s, {s['n'] / wall:.2f} reviews/s "
              f"({wall / 60:.1f} min), success rate {s['success_rate']:.3f}, {s['queries']:.0f} queries a review")
    if opts.rounds:
        idx = sample_indices(len(data.test), opts.rounds * opts.peer_n, 2)
        times = {"projected": [], "f_pred_prob": []}
        for r in range(opts.rounds):
            chunk = idx[r * opts.peer_n:(r + 1) * opts.peer_n]
            for name, probs in (("projected", fast), ("f_pred_prob", model.f_pred_prob)):
                t0 = time.perf_counter()
                for i in chunk:
                    attack_one(model.f_pred_prob, pwws, data.test.seqs[i], int(data.test.labels[i]), table, 1.0, probs)
                times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1}: projected {times['projected'][-1]:.1f} s, f_pred_prob {times['f_pred_prob'][-1]:.1f} s "
                  f"({opts.peer_n} reviews each)")
        ratio = np.median(np.array(times["f_pred_prob"]) / np.array(times["projected"]))
        record["peer"] = {k: [round(v, 2) for v in vs] for k, vs in times.items()}
        record["peer"]["speedup_median"] = round(float(ratio), 2)
        print(f"the projections' speed-up (median of {opts.rounds} rounds): {ratio:.2f}x")
    Path(opts.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
