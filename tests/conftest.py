"""Shared helpers: tiny settings so every compiled graph is small and cached across tests."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

# A graph rewrite that fails is an error here, not a warning after which PyTensor carries on
# without it (its default). Set before anything imports pytensor, after the user's own
# PYTENSOR_FLAGS (the right-most value wins), as PyTensor's own conftest.py does; the commands
# the tests launch (run_cli) inherit it.
os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (os.environ.get("PYTENSOR_FLAGS", ""), "on_opt_error=raise") if f)
if "pytensor" in sys.modules:  # imported before this file (by a plugin): the variable came too late
    sys.modules["pytensor"].config.on_opt_error = "raise"

# Each test process compiles into a PyTensor compile cache of its own. Under pytest-xdist (-n auto,
# the README's command) the workers would otherwise share PyTensor's one default cache, where a
# process waits for another's compile for at most compile__timeout (120 s) and then fails
# (filelock.Timeout): on a loaded machine with a cold cache a queue of compiles gets there. The
# cache is one of the sweep launcher's slots ($LSTM_ADV_COMPILEDIR, else ~/.cache/lstm_adv/pytensor,
# then <host>/slot-K; `lstm_adv.sweeps.launcher.SlotPool`), held with a file lock for the session,
# so no other test session or sweep on the host uses it meanwhile and the next session finds it
# warm. The commands the tests start inherit it (PYTENSOR_FLAGS, NUMBA_CACHE_DIR); a sweep
# launcher gives its runs slots of their own (tests/test_sweep.py: in a temporary folder).
_COMPILE_SLOT = {}


def pytest_configure(config):
    if getattr(config, "workerinput", None) is None and config.getoption("numprocesses", None):
        return   # the pytest-xdist controller: it runs no test
    if "pytensor" in sys.modules:   # imported by a plugin before this hook: too late to move its cache
        return
    import tempfile

    from lstm_adv.common.errors import UserError
    from lstm_adv.sweeps.commands import default_compiledir_root
    from lstm_adv.sweeps.launcher import SlotPool, compile_env

    try:
        pool = SlotPool(default_compiledir_root(), 1)
        slot = pool.free[0]
    except (UserError, OSError):   # no writable cache folder (HOME read-only): a private one, cold
        pool, slot = None, Path(tempfile.mkdtemp(prefix="lstm_adv-tests-compiledir-"))
    _COMPILE_SLOT.update(pool=pool, slot=slot)
    env = compile_env(slot)
    os.environ["PYTENSOR_FLAGS"], os.environ["NUMBA_CACHE_DIR"] = env["PYTENSOR_FLAGS"], env["NUMBA_CACHE_DIR"]


def pytest_unconfigure(config):
    pool, slot = _COMPILE_SLOT.pop("pool", None), _COMPILE_SLOT.pop("slot", None)
    if pool is not None:
        pool.release()
    elif slot is not None:
        shutil.rmtree(slot, ignore_errors=True)


# A toy run small enough to train in seconds; the same shapes everywhere keep compiles cached.
TINY = ["data=toy", "wdim=8", "hdim=8", "max_epochs=2", "validFreq=20", "saveFreq=20",
        "attack_eps=", "progress=0", "mode=C"]


def merge(*groups):
    """``key=value`` lists joined, a later value replacing an earlier one (commands refuse a key given twice)."""
    out = {}
    for group in groups:
        for arg in group:
            out[arg.split("=", 1)[0]] = arg
    return list(out.values())


# Every subprocess a test starts has this timeout: a guard against a hung process, not a speed
# requirement (a loaded machine, a cold compile cache and a first IMDB build are all slow).
HANG_GUARD = 3600


def run_cli(module, args, cwd, timeout=HANG_GUARD, env=None):
    """Run ``python -m module args`` and return the CompletedProcess (text output)."""
    # One BLAS thread: OpenBLAS threads oversubscribed by parallel test processes crawl.
    full_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def wait_for_file(path, proc):
    """Poll until ``path`` exists; fail as soon as ``proc`` has ended without it. No deadline: the
    file comes at a chosen point of the run (lstm_adv.common.faults), however slow the machine."""
    while not Path(path).exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)


def read_json(path):
    return json.loads(Path(path).read_text())


def load_npz(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def assert_one_line_error(proc, *fragments):
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for frag in fragments:
        assert frag in errors[0], (frag, errors[0])


def write_nan_params(path, args):
    """A params.npz that fits the training keys ``args`` (data=toy) and whose classifier bias is NaN.

    Training from it (``reload_model=``) makes the first cost NaN by IEEE arithmetic on any CPU:
    the deterministic way to test the NaN path (a huge learning rate depends on float overflow).
    """
    from lstm_adv import config
    from lstm_adv.data import load_dataset
    from lstm_adv.core.model import expected_shapes

    cfg = config.parse_args([a for a in args if not a.startswith(("saveto=", "reload_model="))])
    n_words = min(cfg.n_words, len(load_dataset(cfg).words))
    rng = np.random.default_rng(0)
    params = {k: (0.1 * rng.standard_normal(shape)).astype(cfg.floatX)
              for k, shape in expected_shapes(cfg, n_words).items()}
    params["b"][:] = np.nan
    np.savez(path, **params)
    return path


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A run trained on data=toy with the `TINY` keys, once per test module (visualiser, word attacks)."""
    out = tmp_path_factory.mktemp("toy") / "run"
    repo = Path(__file__).resolve().parents[1]
    proc = run_cli("lstm_adv.train", TINY + [f"saveto={out}"], repo, env={"LSTM_ADV_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture
def tiny():
    return list(TINY)


# Opt-in markers: their tests run only when the -m expression names them (pytest -m long).
# Not addopts = -m "not long ...": a -m on the command line (the fast tier's -m "not slow")
# replaces addopts' and would let them in.
OPT_IN = ("long", "browser")


# Files whose tests must share one process, in this order: a JAX model compiled in a process that
# has trained a FAST_COMPILE one (tests/test_backends.py) fails with "No JAX conversion for Gemm"
# (PyTensor 3.0.7: the Scan's inner graph reaches the JAX linker rewritten with BLAS ops; the
# shared state is not found yet, experiments/benchmarks.md, "JAX"). NUMBA or C before JAX is fine.
JAX_FIRST = ("tests/test_jax.py", "tests/test_backends.py")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: -n auto, the README's command
def pytest_xdist_make_scheduler(config, log):
    """setup.cfg's --dist loadfile, except that JAX_FIRST's files are one unit of work, so they
    share a process and run in collection order (JAX first, `pytest_collection_modifyitems`).

    Not --dist loadgroup with xdist_group marks: with pytest 9 its group suffix never reaches
    the scheduler (pytest-dev/pytest-xdist#1386), and the groups are silently ignored."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class JaxFirstScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            path = super()._split_scope(nodeid)
            return "jax-first" if path in JAX_FIRST else path

    return JaxFirstScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    named = set(re.findall(r"\w+", config.getoption("markexpr") or ""))
    left_out = [it for it in items if any(it.get_closest_marker(m) for m in OPT_IN if m not in named)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [it for it in items if it not in left_out]
    # JAX first (JAX_FIRST): under -n its files share one process (`pytest_xdist_make_scheduler`);
    # without -n everything is one process.
    items.sort(key=lambda item: 0 if item.nodeid.startswith(JAX_FIRST[0]) else 1)


def assert_gradients_match_finite_differences(tparams, grads, cost_at, candidates=None, h=1e-6, per_param=6):
    """Each parameter's gradient against central differences of ``cost_at()`` at a few seeded entries.

    ``tparams``: name -> shared variable (moved in place and put back); ``grads``: the arrays to
    check, in the same order; ``candidates``: name -> flat indices to pick from (default: all).
    """
    pick = np.random.default_rng(2)
    for (name, var), g in zip(tparams.items(), grads):
        value = var.get_value()
        pool = (candidates or {}).get(name, range(value.size))
        for f in pick.choice(pool, size=min(per_param, len(pool)), replace=False):
            i = np.unravel_index(f, value.shape)
            vals = []
            for s in (h, -h):
                moved = value.copy()
                moved[i] += s
                var.set_value(moved)
                vals.append(cost_at())
            var.set_value(value)
            assert g[i] == pytest.approx((vals[0] - vals[1]) / (2 * h), rel=1e-4, abs=1e-8), (name, i)
