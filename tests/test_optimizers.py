"""The update rules of `lstm_adv.core.optimizers` against the Theano tutorial's two-function form.

The tutorial (``lstm.py`` of the deeplearning.net LSTM tutorial) built each rule as two
compiled functions: ``f_grad_shared(x, y)`` returns the cost and stores the gradient (and, for
adadelta and rmsprop, the running averages of it) in shared variables, then ``f_update(lr)``
takes the step from what was stored. `lstm_adv.core.optimizers` folds both into one list of updates
(its module docstring). Below, the tutorial's three rules are rewritten in PyTensor in their
two-function form and both versions train the same tiny float64 model (a bag of word
embeddings and a softmax classifier) on the same 20 minibatches from the same start: the
parameters and the optimizer state must agree to 1e-10. adadelta's lazy row update of
``Wemb`` (both its graph and its C kernel) is held to the same dense tutorial reference.
Gradient clipping is not the optimizers' business (`lstm_adv.core.model` clips inside the graph;
tests/test_authors_graph.py checks it).
"""

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from lstm_adv.config import FIELDS, parse_args
from lstm_adv.common.errors import UserError
from lstm_adv.core.backend import blas_ldflags
from lstm_adv.core import optimizers
from lstm_adv.core.optimizers import LAZY_ROWS, OPTIMIZERS, AdadeltaRows, caught_up

N_WORDS, WDIM, N_CLASSES = 12, 3, 2
STEPS, BATCH, LENGTH = 20, 4, 3
LRATE = 0.5  # sgd's only; adadelta and rmsprop ignore it, as in the tutorial
# The C backend, the one training uses by default (and the one `AdadeltaRows` is written for);
# PyTensor 3's own default, NUMBA, would spend minutes compiling these few small functions.
MODE = pytensor.compile.mode.get_mode("CVM")
# PyTensor's mode, not lstm_adv's get_mode: read the BLAS flags silently as get_mode does, or the
# first compile here warns that a pip-installed PyTensor has no BLAS to link (expected: README).
blas_ldflags()


# --- the tutorial's two-function form, rewritten in PyTensor ---------------------------------

def _zeros(tparams, suffix):
    return [pytensor.shared(p.get_value() * 0.0, name=f"{k}_{suffix}") for k, p in tparams.items()]


def tutorial_adadelta(lr, tparams, grads, inputs, cost):
    zipped_grads = _zeros(tparams, "grad")
    running_up2 = _zeros(tparams, "rup2")
    running_grads2 = _zeros(tparams, "rgrad2")
    zgup = [(zg, g) for zg, g in zip(zipped_grads, grads)]
    rg2up = [(rg2, 0.95 * rg2 + 0.05 * (g ** 2)) for rg2, g in zip(running_grads2, grads)]
    f_grad_shared = pytensor.function(inputs, cost, updates=zgup + rg2up, mode=MODE)
    updir = [-pt.sqrt(ru2 + 1e-6) / pt.sqrt(rg2 + 1e-6) * zg
             for zg, ru2, rg2 in zip(zipped_grads, running_up2, running_grads2)]
    ru2up = [(ru2, 0.95 * ru2 + 0.05 * (ud ** 2)) for ru2, ud in zip(running_up2, updir)]
    param_up = [(p, p + ud) for p, ud in zip(tparams.values(), updir)]
    f_update = pytensor.function([lr], [], updates=ru2up + param_up, on_unused_input="ignore", mode=MODE)
    return f_grad_shared, f_update, running_up2 + running_grads2


def tutorial_rmsprop(lr, tparams, grads, inputs, cost):
    zipped_grads = _zeros(tparams, "grad")
    running_grads = _zeros(tparams, "rgrad")
    running_grads2 = _zeros(tparams, "rgrad2")
    zgup = [(zg, g) for zg, g in zip(zipped_grads, grads)]
    rgup = [(rg, 0.95 * rg + 0.05 * g) for rg, g in zip(running_grads, grads)]
    rg2up = [(rg2, 0.95 * rg2 + 0.05 * (g ** 2)) for rg2, g in zip(running_grads2, grads)]
    f_grad_shared = pytensor.function(inputs, cost, updates=zgup + rgup + rg2up, mode=MODE)
    updir = _zeros(tparams, "updir")
    updir_new = [(ud, 0.9 * ud - 1e-4 * zg / pt.sqrt(rg2 - rg ** 2 + 1e-4))
                 for ud, zg, rg, rg2 in zip(updir, zipped_grads, running_grads, running_grads2)]
    param_up = [(p, p + udn[1]) for p, udn in zip(tparams.values(), updir_new)]
    f_update = pytensor.function([lr], [], updates=updir_new + param_up, on_unused_input="ignore",
                                 mode=MODE)
    return f_grad_shared, f_update, running_grads + running_grads2 + updir


def tutorial_sgd(lr, tparams, grads, inputs, cost):
    gshared = _zeros(tparams, "grad")
    gsup = [(gs, g) for gs, g in zip(gshared, grads)]
    f_grad_shared = pytensor.function(inputs, cost, updates=gsup, mode=MODE)
    pup = [(p, p - lr * g) for p, g in zip(tparams.values(), gshared)]
    f_update = pytensor.function([lr], [], updates=pup, mode=MODE)
    return f_grad_shared, f_update, []


TUTORIAL = {"adadelta": tutorial_adadelta, "rmsprop": tutorial_rmsprop, "sgd": tutorial_sgd}


# --- the tiny problem ------------------------------------------------------------------------

def _start():
    rng = np.random.default_rng(0)
    return {"Wemb": 0.1 * rng.standard_normal((N_WORDS, WDIM)),
            "U": 0.1 * rng.standard_normal((WDIM, N_CLASSES)),
            "b": np.zeros(N_CLASSES)}


def _batches(n=STEPS):
    """Minibatches of word ids drawn from a few rows each, so rows sit out several updates."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        x = rng.integers(0, N_WORDS, size=(BATCH, LENGTH))
        # the label a fixed function of the words: a cost that can be driven down
        out.append((x, (x.sum(axis=1) % 2).astype(np.int64)))
    return out


def _model():
    """Shared parameters (float64, the start `_start`), the inputs and the tutorial's cost."""
    tparams = OrderedDict((k, pytensor.shared(v.copy(), name=k, shape=v.shape)) for k, v in _start().items())
    x, y = pt.matrix("x", dtype="int64"), pt.vector("y", dtype="int64")
    proj = tparams["Wemb"][x].mean(axis=1)
    pred = pt.special.softmax(pt.dot(proj, tparams["U"]) + tparams["b"], axis=-1)
    cost = -pt.log(pred[pt.arange(x.shape[0]), y] + 1e-8).mean()
    return tparams, x, y, cost


def _values(shared):
    return {s.name: s.get_value() for s in shared}


def _tutorial_run(name, batches):
    tparams, x, y, cost = _model()
    lr = pt.scalar("lr", dtype="float64")
    f_grad_shared, f_update, state = TUTORIAL[name](lr, tparams, pt.grad(cost, list(tparams.values())),
                                                    [x, y], cost)
    costs = []
    for xb, yb in batches:
        costs.append(float(f_grad_shared(xb, yb)))
        f_update(LRATE)
    return costs, _values(tparams.values()), _values(state)


def _project_run(name, batches, lazy_kernel=None):
    """Our one-call update; ``lazy_kernel`` ("graph" or "c"): adadelta updates Wemb by rows."""
    tparams, x, y, cost = _model()
    grads = dict(zip(tparams, pt.grad(cost, list(tparams.values()))))
    inputs, rows = [x, y], None
    if lazy_kernel:
        # the batch's distinct rows come in as an input, as `embedding_row_grad` makes them in the model
        ids = pt.vector("ids", dtype="int64")
        inputs.append(ids)
        rows = {"Wemb": (ids, grads["Wemb"][ids])}
    updates, state = OPTIMIZERS[name](tparams, grads, LRATE, rows=rows, kernel=lazy_kernel or "graph")
    f = pytensor.function(inputs, cost, updates=updates, mode=MODE)
    costs = []
    for xb, yb in batches:
        costs.append(float(f(xb, yb, np.unique(xb)) if lazy_kernel else f(xb, yb)))
    values = _values(state.values())
    for lazy in state.lazy.values():   # the pending decays, as the dense update holds them
        for acc in lazy.accumulators:
            values[acc.name] = caught_up(values[acc.name], lazy.count.get_value(), lazy.last.get_value())
    return costs, _values(tparams.values()), values


def _assert_same(ours, theirs):
    (c1, p1, s1), (c2, p2, s2) = ours, theirs
    np.testing.assert_allclose(c1, c2, rtol=0, atol=1e-10)
    assert p1.keys() == p2.keys() and s1.keys() == s2.keys()  # the tutorial's names, for checkpoints
    for k in p2:
        np.testing.assert_allclose(p1[k], p2[k], rtol=0, atol=1e-10, err_msg=k)
    for k in s2:
        np.testing.assert_allclose(s1[k], s2[k], rtol=0, atol=1e-10, err_msg=k)


# --- tests -----------------------------------------------------------------------------------

def test_every_optimizer_has_a_tutorial_reference_and_a_config_choice():
    assert set(TUTORIAL) == set(OPTIMIZERS)
    assert set(FIELDS["optimizer"].metadata["choices"]) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(TUTORIAL))
def test_one_call_update_equals_the_tutorials_two_functions(name):
    batches = _batches()
    ours, theirs = _project_run(name, batches), _tutorial_run(name, batches)
    _assert_same(ours, theirs)
    start = _start()
    for k, v in ours[1].items():  # the 20 steps did move every parameter
        assert np.abs(v - start[k]).max() > 1e-6, (name, k)


@pytest.mark.parametrize("kernel", ["graph", "c"])
def test_lazy_row_adadelta_equals_the_tutorials_dense_adadelta(kernel):
    assert LAZY_ROWS == ("adadelta",)
    batches = _batches()
    used = [set(np.unique(xb)) for xb, _ in batches]
    assert any(w not in u for w in range(N_WORDS) for u in used)  # some rows do sit out updates
    _assert_same(_project_run("adadelta", batches, lazy_kernel=kernel), _tutorial_run("adadelta", batches))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_decreases_the_cost(name):
    batches = _batches()
    full = (np.concatenate([xb for xb, _ in batches]), np.concatenate([yb for _, yb in batches]))
    tparams, x, y, cost = _model()
    f_cost = pytensor.function([x, y], cost, mode=MODE)
    before = float(f_cost(*full))
    _, params, _ = _project_run(name, [full] * STEPS)
    for k, v in params.items():
        tparams[k].set_value(v)
    after = float(f_cost(*full))
    assert after < before, (name, before, after)


@pytest.mark.parametrize("value, fragment", [
    ("adam", "optimizer=adam is not one of adadelta, rmsprop, sgd"),
    ("adadelt", "did you mean optimizer=adadelta?"),
])
def test_unknown_optimizer_is_a_one_line_user_error(value, fragment, tmp_path):
    with pytest.raises(UserError) as err:
        parse_args([f"optimizer={value}"])
    assert fragment in str(err.value) and "\n" not in str(err.value)
    saved = tmp_path / "config.json"  # the same check when the name comes from a file (config=PATH)
    saved.write_text(f'{{"optimizer": "{value}"}}')
    with pytest.raises(UserError, match="is not one of adadelta, rmsprop, sgd"):
        parse_args([f"config={saved}"])


def test_adadelta_rows_cache_key_covers_its_c_and_the_constants_formatted_in(monkeypatch):
    """An edit of AdadeltaRows' C, or of a constant the graph shares with it, gives another key: no stale binary."""
    op = AdadeltaRows()
    key = op.c_code_cache_version()
    code = op.c_support_code()
    assert f"({optimizers.RHO!r}) * rgj" in code and f"({optimizers.RHO_NEW!r}) * t1" in code
    monkeypatch.setattr(optimizers, "_ROWS_SUPPORT", optimizers._ROWS_SUPPORT + "\n/* edited */")
    assert AdadeltaRows().c_code_cache_version() != key
    monkeypatch.undo()
    monkeypatch.setattr(optimizers, "RHO", 0.9)
    assert "(0.9) * rgj" in AdadeltaRows().c_support_code() and AdadeltaRows().c_code_cache_version() != key
