"""The visualiser's inputs: a trained run's files (`load_run`), its data set, and the reviews chosen."""

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...common.errors import UserError
from ...config import from_dict
from ...core.model import check_params, load_params
from ...data import finalize, load_dataset
from ...data.imdb import cache_paths, read_cache
from ...data.imdb_source import tokenize
from ...rundir import RunDir, checkpoint_params, read_run, read_vocab

# loading a run


@dataclass
class Run:
    """A trained model's files: configuration, parameters and dictionary."""

    path: Path          # the run directory
    cfg: object         # lstm_adv.config.Config
    n_words: int
    params: dict
    words: list         # id -> word, len n_words
    data_cache: object = None   # the run's processed IMDB cache (.npz), when its archive is not found
    word_counts: list = None    # emb_norm=1: the training word counts config.json records
    label_names: list = None    # class id -> name (config.json's data.label_names; None: a run made before K classes)


def load_run(model, data_path="", mode="", which="best"):
    """Read and check ``config.json``, ``params.npz`` and ``vocab.json`` of a run.

    ``which="last"``: the parameters of the run's ``checkpoint.npz`` (the last update it saved) in
    place of ``params.npz`` (the best validation's); ``model`` must then be the run directory.

    Raises
    ------
    UserError
        When the path is missing, a file is not one of ours, or the files do not fit together.
    """
    p = Path(model)
    if p.is_dir():
        run_dir, npz = p, RunDir(p).params
        if not npz.exists():
            raise UserError(f"{p} has no params.npz: model= must be a run directory of lstm_adv.train "
                            "(after its first validation) or a params.npz")
    elif p.is_file():
        run_dir, npz = p.parent, p
    else:
        raise UserError(f"no such model: {model} (give a run directory of lstm_adv.train or its params.npz)")

    files = RunDir(run_dir)
    record = read_run(run_dir, strict=False).saved   # the model's files matter here, not its metrics
    cfg_path = files.config
    if "n_words" not in record:
        raise UserError(f"{cfg_path} is not an lstm_adv run configuration (no 'n_words' entry)")
    try:
        cfg = from_dict(record["config"])
        n_words = int(record["n_words"])
    except (TypeError, ValueError) as err:
        raise UserError(f"{cfg_path} is not a valid lstm_adv run configuration ({err})") from None
    overrides = {}
    if data_path:
        overrides["data_path"] = data_path
    if mode:
        overrides.update(mode=mode, device="gpu" if mode == "JAX" and cfg.device == "gpu" else "cpu")
    cfg = dataclasses.replace(cfg, progress=0, **overrides)
    cfg, data_cache = _recorded_data(cfg, record)

    if which == "last":
        if not p.is_dir():
            raise UserError(f"params=last reads a run directory's checkpoint.npz: give model= the run directory, "
                            f"not {model}")
        npz = files.checkpoint
        if not npz.exists():
            raise UserError(f"{p} has no checkpoint.npz, which params=last reads (the last update's parameters); "
                            "use params=best (params.npz)")
        params = checkpoint_params(load_params(npz))
    else:
        params = load_params(npz)
    if "Wemb" not in params:
        raise UserError(f"{npz} is not an lstm_adv parameter file (no Wemb array; it holds "
                        f"{', '.join(list(params)[:5]) or 'nothing'})")
    check_params(params, cfg, n_words, str(npz))
    for k, v in params.items():
        bad = int(v.size - np.isfinite(v).sum())
        if bad:
            raise UserError(f"{npz}: parameter {k} holds {bad} NaN/Inf values (the run diverged); a model with "
                            "non-finite parameters cannot be decoded: pick another run")

    words = read_vocab(run_dir)
    if words is None:
        raise UserError(f"{run_dir} has no vocab.json (the id -> word list written by lstm_adv.train); "
                        "the visualiser cannot name the words without it")
    rows = params["Wemb"].shape[0]
    if len(words) != rows:
        raise UserError(f"{files.vocab} has {len(words)} words but Wemb in {npz} has {rows} rows: "
                        "the dictionary does not belong to this model")
    info = record.get("data") if isinstance(record.get("data"), dict) else {}
    names = info.get("label_names")
    names = [str(n) for n in names] if isinstance(names, list) else None
    return Run(run_dir, cfg, n_words, params, words, data_cache, record.get("word_counts"), names)


def _recorded_data(cfg, record):
    """Where the run's IMDB data is, from its ``config.json``, when nothing else says so.

    With no ``data_path`` (in the run or given here) and no ``$LSTM_ADV_DATA``, the archive the
    run was trained on (``data.source``) is used if it still exists; else its processed cache
    (``data.cache``, or the cache dir's file for the recorded SHA-256), so the visualiser never
    downloads what the run already had. Returns ``(cfg, cache npz or None)``.
    """
    if cfg.data != "imdb" or cfg.data_path or os.environ.get("LSTM_ADV_DATA"):
        return cfg, None
    info = record.get("data") if isinstance(record.get("data"), dict) else {}
    source = info.get("source")
    if isinstance(source, str) and source and Path(source).exists():
        return dataclasses.replace(cfg, data_path=source), None
    candidates = [Path(info["cache"])] if isinstance(info.get("cache"), str) else []
    if isinstance(info.get("sha256"), str):
        candidates.append(cache_paths(info["sha256"])[0])
    for npz in candidates:
        if npz.exists() and npz.with_name(npz.name[:-len(".npz")] + ".vocab.json").exists():
            return cfg, npz
    return cfg, None


def vocab_digest(words):
    return hashlib.sha256(json.dumps(list(words)).encode("utf-8")).hexdigest()[:16]


def load_data(cfg, words, cache=None, **changes):
    """The run's data set (optionally with changed keys); its dictionary must be the run's.

    ``cache``: a processed IMDB cache to read instead of looking for the archive (`_recorded_data`).
    """
    cfg = dataclasses.replace(cfg, **changes)
    corpus = None
    if cache is not None:
        corpus = read_cache(Path(cache), Path(cache).with_name(Path(cache).name[:-len(".npz")] + ".vocab.json"))
    if corpus is not None:
        data = finalize(corpus.train, corpus.test, corpus.words, cfg, dict(corpus.info, word_counts=corpus.counts))
    else:
        data = load_dataset(cfg)
    if list(data.words[:len(words)]) != list(words):
        raise UserError("the data set's dictionary differs from the run's vocab.json: "
                        "data_path= points to another corpus than the one the model was trained on")
    return data


@dataclass
class Review:
    name: str
    ids: np.ndarray    # int64 word ids
    label: int         # -1 until set (text reviews with label=-1 get the model's prediction)


def select_reviews(opts, run):
    """The reviews named by the options (default: the first 5 of the split)."""
    word_to_id = {w: i for i, w in enumerate(run.words)}
    K = int(run.params["U"].shape[1]) if run.params["U"].ndim == 2 else 2
    if opts.label >= K:
        names = ", ".join(f"{i} {n}" for i, n in enumerate(run.label_names or [])) or "0 negative, 1 positive"
        raise UserError(f"label={opts.label}: the model has {K} classes ({names}); give a class id below {K}, or -1")
    if opts.text or opts.text_file:
        if opts.text:
            texts = [opts.text]
        else:
            try:
                texts = [ln for ln in Path(opts.text_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
            except FileNotFoundError:
                raise UserError(f"no such text_file: {opts.text_file}") from None
            except (OSError, UnicodeDecodeError) as err:
                raise UserError(f"cannot read text_file {opts.text_file}: {err}") from None
            if not texts:
                raise UserError(f"text_file {opts.text_file} has no review (no non-empty line)")
        reviews = []
        for i, text in enumerate(texts):
            tokens = tokenize(text)
            if not tokens:
                raise UserError(f"review {i + 1} is empty after tokenisation")
            ids = np.array([word_to_id.get(t, 1) for t in tokens], dtype=np.int64)
            reviews.append(Review("text" if opts.text else f"line {i + 1}", ids, opts.label))
        return reviews

    data = load_data(run.cfg, run.words, run.data_cache)
    split = getattr(data, opts.split)
    n = len(split)
    if n == 0:
        raise UserError(f"split={opts.split} of this run's data set is empty")
    if opts.index:
        idx = list(opts.index)
        for i in idx:
            if not 0 <= i < n:
                raise UserError(f"index={i} is out of range: split={opts.split} has {n} reviews (0..{n - 1})")
    elif opts.sample or opts.bench:
        rng = np.random.default_rng(opts.seed)
        want = opts.sample or opts.bench
        if opts.sample and want > n:
            raise UserError(f"sample={want} but split={opts.split} has only {n} reviews")
        reps = -(-want // n)
        idx = np.concatenate([rng.permutation(n) for _ in range(reps)])[:want].tolist()
    else:
        want = opts.first or 5
        if opts.first and opts.first > n:
            raise UserError(f"first={opts.first} but split={opts.split} has only {n} reviews")
        idx = list(range(min(want, n)))
    return [Review(f"{opts.split}[{i}]", np.asarray(split.seqs[i], dtype=np.int64), int(split.labels[i]))
            for i in idx]
