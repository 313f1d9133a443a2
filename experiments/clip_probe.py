"""Does a gradient clip ever act at the default clip=5 in a real Table 1 run, and does it change the step?

Trains as `python -m lstm_adv.train` does (the same batches and dropout streams; `preset=authors`
and the given keys), and every ``every`` updates, at the current parameters and on the batch the
next update uses, compares three graphs (dropout drawn alike in each):

- the training graph (``clip=5``, ``adv_grad=joint``, the project's default);
- the same graph with the clip out of reach (``clip=1e30``): a gradient differs only where some
  element of the embedding, h or c gradient (or of the clean branch's LSTM outputs) exceeded the
  bound, since up to the first such element the two backward passes are the same computation;
- ``adv_grad=separate``: the step from L_clean's own clipped gradient, as the authors' code.

Prints one Markdown row per setting: the share of checked updates in which a clip acted on the
training gradient, in which it changed the step (delta), the share of step elements in which the
joint and the separate step differ, and the mean training cost of the last epoch (to show where
training was). Committed output: experiments/results/table1/clip_probe.md.

    LSTM_ADV_DATA=../shared/data/aclImdb.tar.gz python experiments/clip_probe.py eps=0.5 seed=3 epochs=10
"""
import sys
import time

import numpy as np
from lstm_adv.common.utils import make_rng
from lstm_adv.config import parse_args
from lstm_adv.core.backend import limit_blas_threads
from lstm_adv.core.compiled import Model
from lstm_adv.data import load_dataset, prepare_data
from lstm_adv.train import initial_params

limit_blas_threads(1)
opts = dict(a.split("=", 1) for a in sys.argv[1:])
epochs, every = int(opts.pop("epochs", 10)), int(opts.pop("every", 10))
base = {"preset": "authors", "alpha": "0.5", **opts}
keys = [f"{k}={v}" for k, v in base.items()]


def config(**over):
    return parse_args([f"{k}={v}" for k, v in {**base, **over}.items()])


cfg = config()
data = load_dataset(cfg)
n_words = min(cfg.n_words, len(data.words))
params = initial_params(cfg, n_words, data)[0]
t0 = time.time()
train = Model(cfg, n_words, {k: v.copy() for k, v in params.items()})
free = Model(config(clip=1e30), n_words, {k: v.copy() for k, v in params.items()})
separate = Model(config(adv_grad="separate"), n_words, {k: v.copy() for k, v in params.items()})

shuffle = make_rng(cfg.seed, "shuffle")
checks, acted, step_changed, sign_diff, costs = 0, 0, 0, [], []
for epoch in range(epochs):
    perm = shuffle.permutation(len(data.train))
    epoch_costs = []
    for pos in range(0, len(perm), cfg.batch_size):
        idx = perm[pos:pos + cfg.batch_size]
        x, mask, y = prepare_data([data.train.seqs[i] for i in idx], data.train.labels[idx], cfg.floatX)
        if (len(costs) + len(epoch_costs)) % every == 0:
            p = train.get_params()
            free.set_params(p)
            separate.set_params(p)
            a, b, c = (m.inspect(x, mask, y, dropout=True) for m in (train, free, separate))
            checks += 1
            acted += any(not np.array_equal(a["grads"][k], b["grads"][k]) for k in a["grads"])
            step_changed += not np.array_equal(a["delta"], b["delta"])
            real = np.broadcast_to(mask[:, :, None] > 0, a["delta"].shape)
            sign_diff.append(float(np.mean(np.sign(a["delta"])[real] != np.sign(c["delta"])[real])))
        epoch_costs.append(train.train_step(x, mask, y)[0])
    costs.extend(epoch_costs)
    print(f"epoch {epoch}: mean cost {np.mean(epoch_costs):.4f}; so far {acted}/{checks} checks with a clip "
          f"acting, {step_changed} with the step changed", file=sys.stderr, flush=True)

print("| setting | updates | checked | clip acted | step changed by a clip | step signs joint vs separate "
      "| last epoch's mean cost |")
print("|---|---|---|---|---|---|---|")
print(f"| {' '.join(keys)} | {len(costs)} | {checks} | {acted / checks:.3f} | {step_changed / checks:.3f} "
      f"| {np.mean(sign_diff):.2e} (max {np.max(sign_diff):.2e}) | {np.mean(epoch_costs):.4f} |")
print(f"({time.time() - t0:.0f} s)", file=sys.stderr)
