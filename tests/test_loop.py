"""The training loop's small parts: the patience rule, and the loop state through a checkpoint
(its round trip, its file layout, and a checkpoint as the loop before `LoopState` wrote it)."""

import json
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest

import lstm_adv.rundir.state
from lstm_adv.data import BatchStream
from lstm_adv.rundir import STATE_KEYS, LoopState, RunDir, restore_loop_state, save_loop_state
from lstm_adv.train import patience_rule
from lstm_adv.common.utils import make_rng


# The loop state's clocks, frozen: its wall and CPU times are then exact, however loaded the machine.
NOW, CPU_NOW = 1_000_000.0, 500.0


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(lstm_adv.rundir.state, "time", SimpleNamespace(time=lambda: NOW, process_time=lambda: CPU_NOW))


def run_rule(errs, patience):
    """`patience_rule` over a run's validations: (new_best, bad_counter, stop) after each one."""
    out, bad, have_best = [], 0, False
    for i in range(len(errs)):
        new_best, bad, stop = patience_rule(errs[:i + 1], bad, patience, have_best)
        have_best = have_best or new_best
        out.append((new_best, bad, stop))
    return out


def test_patience_rule_counts_only_errors_no_better_than_before_the_window():
    # patience=2: the 3rd validation is compared with the 1st only (0.45 < 0.5: not bad); from the
    # 4th on the window's older part holds 0.4, so each 0.45 counts, and the 3rd count stops.
    assert run_rule([0.5, 0.4, 0.45, 0.45, 0.45, 0.45], 2) == [
        (True, 0, False), (True, 0, False), (False, 0, False), (False, 1, False), (False, 2, False),
        (False, 3, True)]


def test_patience_rule_new_best_resets_the_count_and_a_tie_counts_both_ways():
    assert patience_rule([0.5, 0.5, 0.5, 0.2], 2, patience=2) == (True, 0, False)
    # A tie with the best is a new best (<=) and, no lower than the old best, a bad validation (>=).
    assert patience_rule([0.3, 0.5, 0.5, 0.3], 2, patience=2) == (True, 1, False)
    # An error lower than the window's but not than the best before it is still bad.
    assert patience_rule([0.2, 0.5, 0.4], 0, patience=1) == (False, 1, False)


def test_patience_rule_first_validation_is_the_best_and_never_bad_early():
    assert patience_rule([0.9], 0, patience=1, have_best=False) == (True, 0, False)
    assert patience_rule([0.1, 0.9], 0, patience=5, have_best=False) == (True, 0, False)
    # The first patience validations are never counted; the next tie is (and is also a new best).
    assert run_rule([0.5] * 6, 5) == [(True, 0, False)] * 5 + [(True, 1, False)]


class _Shared:
    """A stand-in for the PyTensor shared variable that holds one of `Model.rngs`."""

    def __init__(self, value):
        self.value = value

    def get_value(self, borrow=False):
        return self.value

    def set_value(self, value):
        self.value = value


class FakeModel:
    """What the checkpoint functions use of `lstm_adv.core.compiled.Model`, with tiny arrays."""

    NAMES = ("Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b")

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.params = OrderedDict((k, rng.standard_normal(3).astype("float32")) for k in self.NAMES)
        self.opt = OrderedDict((f"{k}_{s}", rng.standard_normal(3).astype("float32"))
                               for k in self.NAMES for s in ("rup2", "rgrad2"))
        self.rngs = OrderedDict((k, _Shared(make_rng(seed, k))) for k in ("clean", "adv", "vat"))

    def get_params(self):
        return OrderedDict((k, v.copy()) for k, v in self.params.items())

    def set_params(self, params):
        assert list(params) == list(self.params)
        self.params = OrderedDict((k, np.array(v)) for k, v in params.items())

    def get_opt_state(self):
        return OrderedDict((k, v.copy()) for k, v in self.opt.items())

    def set_opt_state(self, values):
        assert list(values) == list(self.opt)
        self.opt = OrderedDict((k, np.array(v)) for k, v in values.items())


def _row(update, valid_err):
    return {"update": update, "epoch": 0, "train_cost": 0.69, "train_err": 0.4, "valid_err": valid_err,
            "test_err": None}


def _mid_run(run_path):
    """A model, an unlabelled stream and a `LoopState` inside an epoch, each with used RNGs."""
    model = FakeModel(1)
    for var in model.rngs.values():
        var.get_value().random(3)
    unlab = BatchStream(7, 3, make_rng(1, "unlabelled"))
    unlab.next()
    state = LoopState(uidx=12, eidx=1, batch_pos=4, history=[_row(5, 0.4), _row(10, 0.35)], bad_counter=2,
                      best_update=10, cost_sum=1.25, cost_n=2, elapsed=100.0, estop=False, cpu_elapsed=50.0,
                      epoch_perm=np.arange(9)[::-1].copy(), best_p=model.get_params(),
                      shuffle_rng=make_rng(1, "shuffle"), t_start=NOW - 5,
                      c_start=CPU_NOW - 2)
    state.shuffle_rng.permutation(9)
    run = RunDir(run_path)
    run.path.mkdir(exist_ok=True)
    return run, model, unlab, state


def test_loop_state_round_trips_through_a_checkpoint(tmp_path):
    run, model, unlab, state = _mid_run(tmp_path / "run")
    save_loop_state(run, model, state, unlab)
    other, other_unlab = FakeModel(2), BatchStream(7, 3, make_rng(2, "other"))
    back = restore_loop_state(run.load_checkpoint(print), other, other_unlab)

    for key in STATE_KEYS:
        if key != "elapsed":
            assert getattr(back, key) == getattr(state, key), key
    assert back.elapsed == 105.0  # the earlier attempts' 100 s and this one's 5 s
    assert back.cpu_elapsed == 52.0  # 50 CPU seconds before, 2 in this attempt
    np.testing.assert_array_equal(back.epoch_perm, state.epoch_perm)
    for k in FakeModel.NAMES:
        np.testing.assert_array_equal(back.best_p[k], state.best_p[k])
        np.testing.assert_array_equal(other.params[k], model.params[k])
    for k in model.opt:
        np.testing.assert_array_equal(other.opt[k], model.opt[k])
    # Every random stream continues where it stopped.
    assert np.array_equal(back.shuffle_rng.permutation(9), state.shuffle_rng.permutation(9))
    for k in model.rngs:
        assert other.rngs[k].get_value().random() == model.rngs[k].get_value().random(), k
    for _ in range(4):
        np.testing.assert_array_equal(other_unlab.next(), unlab.next())
    with np.load(run.params) as f:   # the best parameters, beside the checkpoint
        assert f.files == list(FakeModel.NAMES)
        np.testing.assert_array_equal(f["Wemb"], state.best_p["Wemb"])
    assert restore_loop_state(RunDir(tmp_path / "empty").load_checkpoint(print), other) is None


def test_checkpoint_layout_and_no_best_parameters_before_the_first_validation(tmp_path):
    run, model, unlab, state = _mid_run(tmp_path / "run")
    save_loop_state(run, model, state, unlab)
    with np.load(run.checkpoint, allow_pickle=False) as f:
        files, saved = f.files, json.loads(str(f["state_json"]))
    names = list(FakeModel.NAMES)
    assert files == (["param/" + k for k in names] + ["opt/" + k for k in model.opt] + ["best/" + k for k in names]
                     + ["epoch_perm", "unlab/perm", "state_json"])
    assert list(saved) == [*STATE_KEYS, "cpu_elapsed", "unlab", "rng_shuffle", "rng_clean", "rng_adv", "rng_vat"]
    assert set(saved["unlab"]) == {"pos", "rng"} and saved["rng_shuffle"]["bit_generator"] == "PCG64"

    # Between epochs, before a validation, without unlabelled reviews: none of those arrays.
    state = LoopState(uidx=3, shuffle_rng=make_rng(1, "shuffle"), t_start=NOW)
    run.params.unlink()
    save_loop_state(run, model, state)
    with np.load(run.checkpoint, allow_pickle=False) as f:
        assert [k for k in f.files if not k.startswith(("param/", "opt/"))] == ["state_json"]
        assert "unlab" not in json.loads(str(f["state_json"]))
    assert run.checkpoint_prev.exists() and not run.params.exists()
    back = restore_loop_state(run.load_checkpoint(print), FakeModel(2))
    assert back.best_p is None and back.epoch_perm is None and back.uidx == 3


# state_json of a checkpoint written by the loop before LoopState (a toy VAT run with unlabelled=50,
# SIGTERM at update 40): checkpoints of runs started then must resume.
EARLIER_STATE_JSON = (
    '{"uidx": 40, "eidx": 0, "batch_pos": 40, "history": [{"update": 10, "epoch": 0, "train_cost": 0.6924970090389252, '
    '"train_err": 0.41368421052631577, "valid_err": 0.4, "test_err": null}, {"update": 20, "epoch": 0, "train_cost": '
    '0.6881569147109985, "train_err": 0.48947368421052634, "valid_err": 0.5, "test_err": null}, {"update": 30, '
    '"epoch": 0, "train_cost": 0.6840396046638488, "train_err": 0.46210526315789474, "valid_err": 0.42, "test_err": '
    'null}, {"update": 40, "epoch": 0, "train_cost": 0.6816621243953704, "train_err": 0.35789473684210527, '
    '"valid_err": 0.38, "test_err": null}], "bad_counter": 0, "best_update": 40, "cost_sum": 0.0, "cost_n": 0, '
    '"elapsed": 12.906141757965088, "estop": false, "unlab": {"pos": 50, "rng": {"bit_generator": "PCG64", "state": '
    '{"state": 310809040542670371664554415149338467633, "inc": 128898359948245881036229698375814393597}, '
    '"has_uint32": 1, "uinteger": 2739339472}}, "rng_shuffle": {"bit_generator": "PCG64", "state": {"state": '
    '26521698628174580934738331930249722305, "inc": 152091084550604008513153942870668050291}, "has_uint32": 0, '
    '"uinteger": 4126022654}, "rng_clean": {"bit_generator": "PCG64", "state": {"state": '
    '212314588441253003894913609191120129038, "inc": 115195022136443792704458094314545991547}, "has_uint32": 0, '
    '"uinteger": 0}, "rng_adv": {"bit_generator": "PCG64", "state": {"state": '
    '21996018988747483755441521774882662170, "inc": 65004446054486375798090772798342747483}, "has_uint32": 0, '
    '"uinteger": 0}, "rng_vat": {"bit_generator": "PCG64", "state": {"state": '
    '275736303577590856593708756492798435785, "inc": 23455076235061637370003188348919054831}, "has_uint32": 0, '
    '"uinteger": 0}}')


def test_a_checkpoint_of_the_earlier_loop_resumes_and_is_written_back_alike(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    model = FakeModel(1)
    rng = np.random.default_rng(3)
    arrays = OrderedDict([*(("param/" + k, v) for k, v in model.params.items()),
                          *(("opt/" + k, v) for k, v in model.opt.items()),
                          *(("best/" + k, v + 1) for k, v in model.params.items()),
                          ("epoch_perm", rng.permutation(950)), ("unlab/perm", rng.permutation(50)),
                          ("state_json", np.array(EARLIER_STATE_JSON))])
    np.savez(run.checkpoint, **arrays)
    old = json.loads(EARLIER_STATE_JSON)

    other, unlab = FakeModel(2), BatchStream(50, 25, make_rng(2, "unlabelled"))
    state = restore_loop_state(run.load_checkpoint(print), other, unlab)
    assert (state.uidx, state.eidx, state.batch_pos, state.bad_counter, state.best_update, state.estop) == \
           (40, 0, 40, 0, 40, False)
    assert state.history == old["history"] and state.elapsed == pytest.approx(12.906141757965088)
    assert state.cpu_elapsed is None and state.metrics("running")["cpu_time_s"] is None   # not recorded then
    np.testing.assert_array_equal(state.epoch_perm, arrays["epoch_perm"])
    np.testing.assert_array_equal(state.best_p["U"], model.params["U"] + 1)
    np.testing.assert_array_equal(other.params["lstm_W"], model.params["lstm_W"])
    assert state.shuffle_rng.bit_generator.state == old["rng_shuffle"]
    for k in ("clean", "adv", "vat"):
        assert other.rngs[k].get_value().bit_generator.state == old["rng_" + k]
    assert unlab.pos == 50 and unlab.rng.bit_generator.state == old["unlab"]["rng"]
    np.testing.assert_array_equal(unlab.perm, arrays["unlab/perm"])

    # Saved again at once: the same arrays and the same state_json (only the wall time moves on).
    state.t_start = NOW
    save_loop_state(run, other, state, unlab)
    with np.load(run.checkpoint, allow_pickle=False) as f:
        assert f.files == list(arrays)
        for k in arrays:
            if k != "state_json":
                np.testing.assert_array_equal(f[k], arrays[k], err_msg=k)
        new = json.loads(str(f["state_json"]))
    assert list(new) == list(old)
    assert {k: v for k, v in new.items() if k != "elapsed"} == {k: v for k, v in old.items() if k != "elapsed"}
    assert str(np.load(run.checkpoint_prev)["state_json"]) == EARLIER_STATE_JSON


def test_metrics_record_of_a_loop_state():
    state = LoopState(uidx=7, eidx=1, best_update=5, elapsed=10.0, cpu_elapsed=3.0, t_start=NOW - 2,
                      c_start=CPU_NOW - 1, step_time=[0.5, 100])
    out = state.metrics("nan")
    assert list(out) == ["status", "train_err", "valid_err", "test_err", "best_update", "n_updates", "n_epochs",
                         "wall_time_s", "ms_per_update", "cpu_time_s"]
    assert out["cpu_time_s"] == 4.0
    state.cpu_elapsed = None   # resumed from a checkpoint that did not record it: unknown, not a guess
    assert state.metrics("ok")["cpu_time_s"] is None
    assert (out["status"], out["test_err"], out["best_update"], out["n_updates"], out["n_epochs"]) == \
           ("nan", None, 5, 7, 1)
    assert out["ms_per_update"] == 5.0 and out["wall_time_s"] == 12.0
    assert state.metrics("ok", test_err=0.25, eval_time_s=1.0)["test_err"] == 0.25
    state.step_time = [0.0, 0]   # resumed after its last update: this attempt only evaluated
    assert state.metrics("ok")["ms_per_update"] is None


def test_validation_measures_the_train_error_on_train_err_size_evenly_spaced_reviews():
    from types import SimpleNamespace

    from lstm_adv.config import parse_args
    from lstm_adv.data.base import Dataset, Split
    from lstm_adv.train import train_err_split, validate

    # 100 reviews sorted by length; only the first is positive, and the stand-in model says
    # "negative" for everything: the train error is the share of the first review in the set used.
    train = Split([[2] * (1 + i // 10) for i in range(100)], np.array([1] + [0] * 99, dtype=np.int64))
    sub = train_err_split(train, 10)
    assert len(sub) == 10 and sub.seqs[0] == train.seqs[0] and sub.seqs[-1] == train.seqs[-1]
    assert [len(s) for s in sub.seqs] == sorted(len(s) for s in sub.seqs)
    assert train_err_split(train, -1) is train and train_err_split(train, 100) is train
    model = SimpleNamespace(cfg=SimpleNamespace(floatX="float32"),
                            f_pred=lambda x, mask: np.zeros(x.shape[1], dtype=np.int64))
    data = Dataset(train, train.subset(range(1, 5)), train.subset(range(1, 5)), ["<pad>", "<unk>", "w"])
    state = SimpleNamespace(uidx=7, eidx=0, cost_sum=1.0, cost_n=2)
    assert validate(parse_args(["data=toy", "train_err_size=10"]), model, data, state)["train_err"] == 0.1
    state = SimpleNamespace(uidx=7, eidx=0, cost_sum=1.0, cost_n=2)
    row = validate(parse_args(["data=toy"]), model, data, state)
    assert row["train_err"] == 0.01 and row["valid_err"] == 0.0 and row["test_err"] is None
