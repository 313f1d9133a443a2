"""Our adversarial update against PyTorch's ``nn.LSTM`` on the same model, side by side in one process.

    pip install torch==2.13.0     # not a dependency of lstm_adv; CPU wheel is enough
    python experiments/bench_torch.py [reps=30] [shapes=300x128,128x128] [n_words=10000] [dense=1] [scan=1]

For each shape (wdim x hdim), B=16 reviews x T=100 steps, float32, one thread each
(OPENBLAS_NUM_THREADS=1, ``torch.set_num_threads(1)``), the updates are timed alternately (ours,
ours with the dense Wemb update when ``dense=1``, ours on the scan path with the per-step C
kernels when ``scan=1`` (``Model(lstm_kernel="c")``, the default before the whole-sequence Ops),
PyTorch, ours, ...), so all see the same machine load; medians of wall time and of process CPU
time, and the ratio ours / PyTorch. The first line names the CPU and the BLAS kernel.

PyTorch side, the same model and objective as ``python -m lstm_adv.train eps=0.5`` (adv_norm=sign,
alpha=0.5, adv_emb_grad=0): embedding, ``nn.LSTM``, masked mean pooling, dropout (keep 0.5, the
tutorial's unscaled mask), linear + log-softmax NLL; the clean backward of ``alpha * L`` gives
dL/de (``retain_grad``), ``delta = eps * sign(dL/de)``, a second branch on the detached
``e + delta`` whose ``(1 - alpha) * L`` backward adds to every gradient but Wemb's, then
``torch.optim.Adadelta(rho=0.95, eps=1e-6, lr=1)`` (dense over all of Wemb, as nn.Embedding
gives a dense gradient). Not modelled on the PyTorch side: our elementwise gradient clipping at
5 on the embedded input and on h and c at every step (``grad_clip``; ``nn.LSTM`` has no per-step
hook), and the mask inside the recurrence (all reviews here are full length, so it is the identity).
"""

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

B, T, EPS, ALPHA = 16, 100, 0.5, 0.5


def torch_update(n_words, wdim, hdim, seed=0):
    """A closure doing one adversarial update of the PyTorch model on a given batch."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(n_words, wdim)
            self.lstm = nn.LSTM(wdim, hdim)
            self.out = nn.Linear(hdim, 2)

        def loss(self, e, mask, y):
            h, _ = self.lstm(e)
            pooled = (h * mask[:, :, None]).sum(0) / mask.sum(0)[:, None]
            pooled = pooled * (torch.rand_like(pooled) < 0.5).to(pooled.dtype)
            return nn.functional.nll_loss(torch.log_softmax(self.out(pooled), dim=1), y)

    net = Net()
    with torch.no_grad():
        net.emb.weight.mul_(0).add_(0.01 * torch.rand(n_words, wdim))
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0, rho=0.95, eps=1e-6)

    def update(x, mask, y):
        opt.zero_grad(set_to_none=False)
        e = net.emb(x)
        e.retain_grad()
        loss_c = ALPHA * net.loss(e, mask, y)
        loss_c.backward()
        delta = EPS * torch.sign(e.grad) * mask[:, :, None]
        loss_a = (1 - ALPHA) * net.loss((e + delta).detach(), mask, y)
        loss_a.backward()
        opt.step()
        return (loss_c + loss_a).item()

    return update


def ours_update(n_words, wdim, hdim, wemb_update, lstm_kernel="seq"):
    from lstm_adv.config import parse_args
    from lstm_adv.core.backend import limit_blas_threads
    from lstm_adv.core.compiled import Model

    limit_blas_threads(1)   # as lstm_adv.train and lstm_adv.bench run the model
    cfg = parse_args(["mode=C", "floatX=float32", f"eps={EPS}", f"alpha={ALPHA}", f"n_words={n_words}",
                      f"wdim={wdim}", f"hdim={hdim}"])
    m = Model(cfg, n_words, wemb_update=wemb_update, lstm_kernel=lstm_kernel)
    return m.f_train


def measure(n_words, wdim, hdim, reps, dense, scan=False):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.integers(2, n_words, size=(T, B))
    y = rng.integers(0, 2, size=B)
    mask = np.ones((T, B), dtype=np.float32)
    tx, tmask, ty = torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(y)
    sides = {"ours": (ours_update(n_words, wdim, hdim, "lazy"), (x, mask, y))}
    if dense:
        sides["ours_dense_wemb"] = (ours_update(n_words, wdim, hdim, "dense"), (x, mask, y))
    if scan:
        sides["ours_scan"] = (ours_update(n_words, wdim, hdim, "lazy", "c"), (x, mask, y))
    sides["torch"] = (torch_update(n_words, wdim, hdim), (tx, tmask, ty))
    for fn, args in sides.values():  # warm up (first calls allocate)
        for _ in range(3):
            fn(*args)
    wall = {k: [] for k in sides}
    cpu = {k: [] for k in sides}
    for _ in range(reps):
        for k, (fn, args) in sides.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn(*args)
            cpu[k].append(time.process_time() - c0)
            wall[k].append(time.perf_counter() - t0)
    return {k: (1000 * float(np.median(wall[k])), 1000 * float(np.median(cpu[k]))) for k in sides}


def cpu_model():
    """The CPU's model name (Linux's /proc/cpuinfo), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def main(argv):
    opts = {"reps": "30", "shapes": "300x128,128x128", "n_words": "10000", "dense": "1", "scan": "0"}
    for a in argv:
        if a in ("-h", "--help"):
            print(__doc__)
            return 0
        k, _, v = a.partition("=")
        if k not in opts or not v:
            print(f"error: unknown or empty option {a!r}; options: {', '.join(opts)}", file=sys.stderr)
            return 2
        opts[k] = v
    try:
        import torch
    except ImportError:
        print("error: PyTorch is not installed: pip install torch==2.13.0", file=sys.stderr)
        return 2
    reps, n_words, dense, scan = int(opts["reps"]), int(opts["n_words"]), opts["dense"] != "0", opts["scan"] != "0"
    from lstm_adv.core.backend import blas_info

    print(f"B={B} T={T} n_words={n_words} float32, 1 thread each, {reps} alternating updates; torch "
          f"{torch.__version__}; {cpu_model()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; BLAS "
          + ", ".join(sorted({f"{b['library']} ({b['architecture']})" for b in blas_info()})), flush=True)
    for shape in opts["shapes"].split(","):
        wdim, hdim = (int(v) for v in shape.split("x"))
        res = measure(n_words, wdim, hdim, reps, dense, scan)
        t_wall, t_cpu = res["torch"]
        line = [f"wdim={wdim} hdim={hdim}:"]
        for k, (w, c) in res.items():
            line.append(f"{k} {w:.1f} ms ({c:.1f} cpu)")
        line.append(f"| ratio ours/torch {res['ours'][0] / t_wall:.2f} wall, {res['ours'][1] / t_cpu:.2f} cpu")
        if dense:
            line.append(f"(dense Wemb: {res['ours_dense_wemb'][0] / t_wall:.2f} wall, "
                        f"{res['ours_dense_wemb'][1] / t_cpu:.2f} cpu)")
        if scan:
            line.append(f"(scan path: {res['ours_scan'][0] / t_wall:.2f} wall, {res['ours_scan'][1] / t_cpu:.2f} cpu)")
        print(" ".join(line), f"; load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
