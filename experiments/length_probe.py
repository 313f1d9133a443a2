"""Are the dev and test errors of a `maxlen_mode=truncate` run apart because of the cut?

With ``maxlen_mode=truncate`` the training reviews, and so the validation split drawn from them,
are cut to their first ``maxlen`` tokens, while the test reviews are read whole (the tutorial cuts
or filters only the training split). For each run directory (its best parameters, params.npz,
and its own configuration) this prints the clean error, dropout off, on the validation split as
trained (cut) and read whole (the same reviews), and on the test split cut to ``maxlen`` and read
whole. ``valid cut`` is the run's dev error and ``test whole`` its test error. Prints Markdown
table rows; committed output: experiments/results/vat_comparison/length_probe.md.

    LSTM_ADV_DATA=../shared/data/aclImdb.tar.gz python experiments/length_probe.py RUN_DIR [RUN_DIR ...]
"""
import sys
from pathlib import Path

from lstm_adv.analysis.visualize.inputs import load_data, load_run
from lstm_adv.common.lifecycle import cli_entry
from lstm_adv.core.backend import limit_blas_threads
from lstm_adv.core.compiled import Model
from lstm_adv.data.base import Split
from lstm_adv.evaluate import pred_error


@cli_entry
def main(argv):
    runs = [(Path(a).resolve(), load_run(a)) for a in argv]   # every path checked before any work
    limit_blas_threads(1)
    print("| run | eps | maxlen | valid cut (dev err) | valid whole | test cut | test whole (test err) |")
    print("|---|---|---|---|---|---|---|")
    for path, run in runs:
        cfg = run.cfg
        if not (cfg.maxlen and cfg.maxlen_mode == "truncate"):
            print(f"{path}: not a maxlen_mode=truncate run, skipped", file=sys.stderr)
            continue
        cut = load_data(cfg, run.words, run.data_cache)
        # maxlen=0 keeps every review whole; truncation drops none, so the seeded validation
        # draw picks the same reviews.
        whole = load_data(cfg, run.words, run.data_cache, maxlen=0)
        assert sorted(map(tuple, cut.valid.seqs)) == sorted(tuple(s[:cfg.maxlen]) for s in whole.valid.seqs)
        test_cut = Split([s[:cfg.maxlen] for s in cut.test.seqs], cut.test.labels)
        model = Model(cfg, run.n_words, run.params, word_counts=run.word_counts)
        errors = [pred_error(model, s, cfg.valid_batch_size) for s in (cut.valid, whole.valid, test_cut, cut.test)]
        print(f"| {path.name} | {cfg.eps:g} | {cfg.maxlen} | "
              + " | ".join(f"{e:.3f}" for e in errors) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
