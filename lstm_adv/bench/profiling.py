"""The per-phase breakdown of one adversarial update, from PyTensor's profiler (``breakdown=1``):
which part of the update (input projections, the forward and backward recurrence, the embedding
gradient, the optimizer steps) takes the time. Runs in the worker process (`lstm_adv.bench.measure`).
"""

import time

PHASES = ("input projections (sequence products)", "forward recurrence", "backward recurrence", "embedding gradient",
          "optimizer step Wemb", "optimizer step rest", "everything else")


def _phase_labels(fn):
    """Phase of every node of a compiled update, from the op and which updates it feeds."""
    from pytensor.scan.op import Scan  # PyTensor: worker process only (see `worker`)
    from pytensor.tensor.extra_ops import Unique  # (as above)
    from pytensor.tensor.subtensor import AdvancedIncSubtensor1

    from ..core.sequence_ops import LSTMSeq, LSTMSeqGrad  # (as above)

    fg = fn.maker.fgraph
    # What each output is: the cost, or the update of a named shared variable.
    out_kind = ["other"] * len(fg.outputs)
    for i_out, i_in in fg.update_mapping.items():
        name = fn.maker.expanded_inputs[i_in].variable.name or ""
        out_kind[i_out] = "wemb" if name.startswith("Wemb") else ("rest" if not name.startswith("rng") else "other")
    reach = {}
    for i, v in enumerate(fg.outputs):
        reach.setdefault(v, set()).add(out_kind[i])
    nodes = fg.toposort()
    feeds = {}
    for node in reversed(nodes):
        kinds = set()
        for out in node.outputs:
            kinds |= reach.get(out, set())
            for client, _ in fg.clients.get(out, []):
                if client != "output" and hasattr(client, "op"):
                    kinds |= feeds.get(client, set())
        feeds[node] = kinds
        for inp in node.inputs:
            reach.setdefault(inp, set())
    # The embedding gradient: the scatter-add into zeros (rows or dense) and what feeds only it.
    scatter = [n for n in nodes if isinstance(n.op, AdvancedIncSubtensor1) and not n.op.set_instead_of_inc
               and feeds[n] == {"wemb"}]
    emb_grad = set()
    stack = list(scatter)
    while stack:
        n = stack.pop()
        if n in emb_grad:
            continue
        emb_grad.add(n)
        stack += [i.owner for i in n.inputs if i.owner is not None and feeds.get(i.owner) == {"wemb"}]
    labels = {}
    for n in nodes:
        op = n.op
        # The recurrence: scans (NUMBA, JAX, lstm_kernel="c") or the whole-sequence Ops (mode C).
        if isinstance(op, LSTMSeqGrad) or (isinstance(op, Scan) and "backward" in (op.name or "")):
            labels[n] = "backward recurrence"
        elif isinstance(op, (Scan, LSTMSeq)):
            labels[n] = "forward recurrence"
        elif n in emb_grad or isinstance(op, Unique):
            labels[n] = "embedding gradient"
        elif "Dot" in type(op).__name__ or "Gemm" in type(op).__name__ or "Gemv" in type(op).__name__:
            labels[n] = "input projections (sequence products)"
        elif feeds[n] == {"wemb"}:
            labels[n] = "optimizer step Wemb"
        elif feeds[n] == {"rest"}:
            labels[n] = "optimizer step rest"
        else:
            labels[n] = "everything else"
    return labels


def breakdown(m, batch, reps):
    """Milliseconds per adversarial update by phase (`PHASES`), from PyTensor's profiler."""
    import pytensor  # worker process only (see `worker`)

    inputs, cost, updates = m._train_spec
    with pytensor.config.change_flags(floatX=m.cfg.floatX):
        fn = pytensor.function(inputs, cost, updates=updates, mode=m.mode, name="f_train_profiled",
                               on_unused_input="ignore", profile=True)
    fn(*batch)
    fn.profile.apply_time.clear()
    calls = max(reps, 5)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(*batch)
    wall = 1000 * (time.perf_counter() - t0) / calls
    labels = _phase_labels(fn)
    ms = dict.fromkeys(PHASES, 0.0)
    for (fg, node), t in fn.profile.apply_time.items():
        ms[labels.get(node, "everything else")] += 1000 * t / calls
    total = sum(ms.values())
    return {"ms_per_update_profiled": round(wall, 2), "ms_in_nodes": round(total, 2),
            "phases_ms": {k: round(v, 2) for k, v in ms.items()},
            "phases_share": {k: round(v / total, 3) if total else None for k, v in ms.items()}}


def breakdown_lines(r):
    b = r["breakdown"]
    sh = r.get("shapes", {})
    lines = [f"breakdown of one adversarial update ({r['mode']} {r['floatX']}, wdim={sh.get('wdim')} "
             f"hdim={sh.get('hdim')} n_words={sh.get('n_words')}, Wemb update {sh.get('wemb_update')}; "
             f"profiled {b['ms_per_update_profiled']:.1f} ms/update, {b['ms_in_nodes']:.1f} ms in nodes):"]
    for k in PHASES:
        lines.append(f"  {k:<40} {b['phases_ms'][k]:7.2f} ms  {100 * (b['phases_share'][k] or 0):5.1f}%")
    return lines
