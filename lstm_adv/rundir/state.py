"""The training loop's state as a checkpoint holds it: `LoopState`, `save_loop_state`, `restore_loop_state`.

A resumed run continues bit for bit: the checkpoint holds every RNG state, the epoch's order and
position, the optimizer and the patience rule's counters (`save_loop_state` lists the format);
`patience_rule` is the tutorial's rule those counters follow.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class LoopState:
    """Where the training loop stands: what a checkpoint saves and a resumed run continues from.

    The fields from ``uidx`` to ``estop`` (the tutorial's names) are the checkpoint's ``state_json``
    (`STATE_KEYS`); ``cpu_elapsed``, ``epoch_perm``, ``best_p`` and ``shuffle_rng`` are saved beside
    them (`save_loop_state`); the last four fields belong to one attempt and are never saved.
    """

    uidx: int = 0                      # updates done
    eidx: int = 0                      # epochs done
    batch_pos: int = 0                 # the next minibatch of the epoch's permutation
    history: list = field(default_factory=list)   # one row per validation (history.csv)
    bad_counter: int = 0               # the patience rule's count (patience_rule)
    best_update: Optional[int] = None  # the update at which best_p was taken
    cost_sum: float = 0.0              # training cost summed since the last validation ...
    cost_n: int = 0                    # ... over this many updates
    elapsed: float = 0.0               # wall seconds of the earlier attempts
    estop: bool = False                # the patience rule stopped the run
    # CPU seconds of the earlier attempts (all threads of the training process); None when a resumed
    # checkpoint predates it. Unlike wall time it excludes waiting for a shared core or a SIGSTOP pause.
    cpu_elapsed: Optional[float] = 0.0
    epoch_perm: Optional[np.ndarray] = None   # this epoch's order of the training reviews
    best_p: Optional[dict] = None             # the best-on-valid parameters so far
    shuffle_rng: Optional[np.random.Generator] = None
    t_start: float = 0.0                      # time.time() when this attempt's loop began
    c_start: float = 0.0                      # time.process_time() then
    step_time: list = field(default_factory=lambda: [0.0, 0])  # seconds in updates (no compiling), updates
    disp_mark: list = field(default_factory=lambda: [0.0, 0])  # step_time at the last dispFreq line

    def wall_time(self):
        """Seconds of training over all attempts, up to now."""
        return self.elapsed + time.time() - self.t_start

    def cpu_time(self):
        """CPU seconds of the training process over all attempts, up to now; None if unknown."""
        return None if self.cpu_elapsed is None else self.cpu_elapsed + time.process_time() - self.c_start

    def ms_per_update(self):
        """Milliseconds per update in this attempt; None when it made none (a run resumed after its
        last update only evaluates), never a 0 that reads as a measurement."""
        return 1000 * self.step_time[0] / self.step_time[1] if self.step_time[1] else None

    def metrics(self, status, **extra):
        """The ``metrics.json`` record: ``status`` (running, nan, interrupted, ok), the counts and
        times, and ``extra`` (the final errors, the attacks ...); the errors are None until then."""
        ms = self.ms_per_update()
        out = {"status": status, "train_err": None, "valid_err": None, "test_err": None,
               "best_update": self.best_update, "n_updates": self.uidx, "n_epochs": self.eidx,
               "wall_time_s": round(self.wall_time(), 2), "ms_per_update": None if ms is None else round(ms, 2)}
        cpu = self.cpu_time()
        out["cpu_time_s"] = None if cpu is None else round(cpu, 2)
        out.update(extra)
        return out


STATE_KEYS = ("uidx", "eidx", "batch_pos", "history", "bad_counter", "best_update", "cost_sum", "cost_n",
              "elapsed", "estop")


def save_loop_state(run, model, state, unlab=None):
    """Write ``checkpoint.npz`` (`RunDir.save_checkpoint`), then the best parameters so far to ``params.npz``.

    The checkpoint holds the arrays ``param/<name>``, ``opt/<name>``, ``best/<name>`` (once there
    are best parameters), ``epoch_perm`` (inside an epoch) and ``unlab/perm`` (``unlabelled=N``),
    and ``state_json``: the `STATE_KEYS` of ``state`` (``elapsed`` up to now), ``cpu_elapsed`` (CPU
    seconds up to now; left out when unknown, after resuming a checkpoint without it), ``unlab`` (the
    unlabelled stream's position and RNG, ``unlabelled=N`` only), ``rng_shuffle`` and one
    ``rng_<name>`` per random stream of the model (NumPy bit-generator states), in this order.

    Parameters
    ----------
    run : RunDir
    model : lstm_adv.graph.Model
        Its ``get_params``, ``get_opt_state`` and ``rngs`` (shared NumPy generators) are saved.
    state : LoopState
    unlab : lstm_adv.data.BatchStream, optional
        The unlabelled reviews' stream (``unlabelled=N``).
    """
    arrays = OrderedDict(("param/" + k, v) for k, v in model.get_params().items())
    arrays.update(("opt/" + k, v) for k, v in model.get_opt_state().items())
    if state.best_p is not None:
        arrays.update(("best/" + k, v) for k, v in state.best_p.items())
    if state.epoch_perm is not None:
        arrays["epoch_perm"] = state.epoch_perm
    saved = {k: getattr(state, k) for k in STATE_KEYS}
    saved["elapsed"] = state.wall_time()
    cpu = state.cpu_time()
    if cpu is not None:
        saved["cpu_elapsed"] = cpu
    if unlab is not None:
        unlab_arrays, saved["unlab"] = unlab.state()
        arrays.update(("unlab/" + k, v) for k, v in unlab_arrays.items())
    saved["rng_shuffle"] = state.shuffle_rng.bit_generator.state
    saved.update(("rng_" + k, v.get_value(borrow=True).bit_generator.state) for k, v in model.rngs.items())
    run.save_checkpoint(arrays, saved)
    if state.best_p is not None:
        run.write_params(state.best_p)


def patience_rule(valid_errs, bad_counter, patience, have_best=True):
    """The tutorial's rule for the best parameters and the early stop, after a validation.

    Parameters
    ----------
    valid_errs : sequence of float
        Every validation error so far, the newest last.
    bad_counter : int
        The count of bad validations before this one.
    patience : int
        ``cfg.patience`` (positive).
    have_best : bool
        False while no best parameters are kept: the first validation is then the best.

    Returns
    -------
    new_best : bool
        The newest error is the lowest so far (a tie counts): keep the current parameters.
    bad_counter : int
        0 after a new best; then one more when the newest error is no lower than the lowest
        before the last ``patience`` validations.
    stop : bool
        That count has just passed ``patience``.
    """
    errs = np.asarray(valid_errs)
    new_best = not have_best or bool(errs[-1] <= errs.min())
    if new_best:
        bad_counter = 0
    stop = False
    if len(errs) > patience and errs[-1] >= errs[:-patience].min():
        bad_counter += 1
        stop = bad_counter > patience
    return new_best, bad_counter, stop


def restore_loop_state(checkpoint, model, unlab=None):
    """The `LoopState` of a checkpoint (format: `save_loop_state`), its model state set on ``model``.

    Parameters
    ----------
    checkpoint : (arrays, state) or None
        What `RunDir.load_checkpoint` read (read at start-up, so that an unreadable one is refused
        before the model is compiled); None: no checkpoint.
    model : lstm_adv.graph.Model
        Its parameters, optimizer state and random streams are set from the checkpoint.
    unlab : lstm_adv.data.BatchStream, optional
        Its position and RNG are set from the checkpoint.

    Returns
    -------
    LoopState or None
        None when there is no checkpoint.
    """
    if checkpoint is None:
        return None
    arrays, saved = checkpoint
    model.set_params(_prefixed(arrays, "param/"))
    model.set_opt_state(_prefixed(arrays, "opt/"))
    for name, var in model.rngs.items():
        var.set_value(_generator(saved["rng_" + name]))
    if unlab is not None:
        unlab.restore(_prefixed(arrays, "unlab/"), saved["unlab"])
    return LoopState(**{k: saved[k] for k in STATE_KEYS}, cpu_elapsed=saved.get("cpu_elapsed"),
                     epoch_perm=arrays.get("epoch_perm"),
                     best_p=_prefixed(arrays, "best/") or None, shuffle_rng=_generator(saved["rng_shuffle"]))


def checkpoint_params(arrays):
    """The model's parameters in a checkpoint's arrays (``param/<name>``: the last update's, where
    ``params.npz`` holds the best validation's), by the tutorial's names."""
    return _prefixed(arrays, "param/")


def _prefixed(arrays, prefix):
    return OrderedDict((k[len(prefix):], v) for k, v in arrays.items() if k.startswith(prefix))


def _generator(state):
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng
