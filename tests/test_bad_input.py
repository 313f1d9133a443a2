"""Bad input over every command: exit status 2, one ``error:`` line, no traceback, nothing written.

Table-driven and in-process (each case fails before PyTensor compiles anything), so the ~100
cases take seconds; a few go through ``python -m`` to check the real entry points too.
"""

import io
import json
import os
import tarfile

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from lstm_adv import bench, embeddings, results, sweep, train, visualize
from lstm_adv.common.lifecycle import cli_entry
from lstm_adv.data.imdb import data_main

MAINS = {"train": cli_entry(train.main), "data": data_main, "embeddings": embeddings.main, "results": results.main,
         "visualize": visualize.main, "sweep": sweep.main, "bench": cli_entry(bench.main)}
LONG = "n" * 300
TOY = "data=toy progress=0"

CASES = [
    # train: values, finite numbers, sizes, duplicates
    ("train", f"{TOY} eps=inf", "eps=inf must be a finite number"),
    ("train", f"{TOY} eps=nan", "finite"),
    ("train", f"{TOY} lrate=inf", "finite"),
    ("train", f"{TOY} alpha=-inf", "finite"),
    ("train", f"{TOY} reg=1e999", "finite"),
    ("train", f"{TOY} w2v_std=inf", "finite"),
    ("train", f"{TOY} clip=-inf", "finite"),
    ("train", f"{TOY} valid_portion=nan", "finite"),
    ("train", f"{TOY} attack_eps=0.1,inf", "attack_eps"),
    ("train", f"{TOY} attack_eps=0.1,x", "comma-separated numbers"),
    ("train", f"{TOY} hdim=100000000000", "more than this machine's"),
    ("train", f"{TOY} wdim=100000000000", "more than this machine's"),
    ("train", f"{TOY} n_words=100000000000 wdim=100000000", "more than this machine's"),
    ("train", f"{TOY} hdim=8 hdim=16", "hdim is given twice"),
    # the defences of issue 41: impossible combinations, ranges, a synonyms= table that cannot be read
    ("train", f"{TOY} ascc=1 vat=1", "ascc=1 and vat=1 are two adversarial terms"),
    ("train", f"{TOY} ascc=1 eps=0.5", "eps=0.5 is unused by ascc=1"),
    ("train", f"{TOY} ascc=1 adv=0", "adv=0 turns the adversarial term off"),
    ("train", f"{TOY} ascc=1 ascc_k=0", "ascc_k=0 must be >= 1"),
    ("train", f"{TOY} ascc=1 ascc_beta=-1", "ascc_beta=-1.0 must be >= 0"),
    ("train", f"{TOY} ascc=1 ascc_max_subs=1", "ascc_max_subs=1 must be >= 2"),
    ("train", f"{TOY} ascc=1 ascc_lr=0", "ascc_lr=0.0 must be > 0"),
    ("train", f"{TOY} synonym_aug=1.5", "synonym_aug=1.5 must be in [0, 1]"),
    ("train", f"{TOY} ascc=1 synonyms={{file}}", "synonyms="),
    ("train", f"{TOY} synonym_aug=0.2 synonyms={{w2v_words}}", "line 1: expected a word, a tab"),
    ("train", f"{TOY} hdmi=3", "did you mean hdim"),
    ("train", f"{TOY} hdim=0", "must be positive"),
    ("train", f"{TOY} batch_size=-1", "must be positive"),
    ("train", f"{TOY} hdim=3.5", "not an int"),
    ("train", f"{TOY} encoder=gru", "not one of"),
    # train: paths, before the run directory is made
    ("train", f"{TOY} saveto={LONG}", "at most 255"),
    ("train", f"{TOY} saveto={{file}}/run", "is a file"),
    ("train", f"{TOY} saveto={{file}}", "is a file"),
    ("train", f"{TOY} runs_dir={{file}}/runs", "is a file"),
    ("train", f"{TOY} " + " ".join(f"{k}=3" for k in ("hdim", "wdim", "batch_size", "patience", "validFreq",
                                                     "saveFreq", "dispFreq", "maxlen", "seed"))
     + " attack_eps=" + ",".join(["0.001"] * 40), "give saveto="),
    ("train", "progress=0 saveto=r data_path=/nonexistent/aclImdb.tar.gz", "no such file"),
    ("train", f"progress=0 saveto=r data_path={LONG}", "at most 255"),
    ("train", "progress=0 saveto=r data_path={file}", "is not a tar archive"),
    ("train", "progress=0 saveto=r", "IMDB data not found"),
    ("train", f"{TOY} saveto=r reload_model=/nonexistent.npz", "no such file"),
    ("train", f"{TOY} saveto=r reload_model={{file}}", "is not a readable parameter .npz"),
    ("train", f"{TOY} saveto=r reload_model={{dir}}", "no such file"),
    ("train", f"{TOY} saveto=r reload_model={LONG}", "at most 255"),
    ("train", f"{TOY} saveto=r wemb_init=word2vec w2v_path=/nonexistent.bin", "no such file"),
    ("train", f"{TOY} saveto=r wemb_init=word2vec w2v_path={{file}}", "is not a word2vec file"),
    ("train", f"{TOY} saveto=r wemb_init=word2vec w2v_path={{w2v}}", "use wdim=3"),
    ("train", f"{TOY} saveto=r w2v_std=-1", "w2v_std=-1.0 must be >= 0"),
    ("train", f"{TOY} saveto=r device=gpu", "device=gpu"),
    ("train", f"{TOY} saveto=r device=gpu floatX=float64", "float32"),
    ("train", f"{TOY} saveto=r device=gpu mode=C", "device=gpu runs through JAX"),
    ("train", f"{TOY} saveto=r eps", "not key=value"),
    # data
    ("data", "fetch url=notaurl", "not a URL"),
    ("data", "build workers=-2", "must be >= 0"),
    ("data", "build workers=abc", "not an integer"),
    ("data", "build workers=1 workers=2", "given twice"),
    ("data", "fetch download=5", "not one of 0, 1"),
    ("data", "build force=2", "not one of 0, 1"),
    ("data", "export", "needs out=DIR"),
    ("data", "export out={file}/x", "is a file"),
    ("data", f"export out={LONG}", "at most 255"),
    ("data", "build data_path=/nonexistent", "no such file or folder"),
    ("data", f"build data_path={LONG}", "at most 255"),
    ("data", "build data_path={file}", "is not a tar archive"),
    ("data", "build cache_dir={file}", "is a file"),
    ("data", "build", "IMDB data not found"),
    ("data", "frob", "unknown command"),
    ("data", "build hdim=3", "unknown key"),
    ("data", "", "no command"),
    # embeddings
    ("embeddings", "train seed=-5", "must be >= 0"),
    ("embeddings", "train unsup=5", "not one of 0, 1"),
    ("embeddings", "train download=2", "not one of 0, 1"),
    ("embeddings", "train out={file}/v.bin", "is a file"),
    ("embeddings", "train out={dir}", "is a folder"),
    ("embeddings", f"train out={LONG}.bin", "at most 255"),
    ("embeddings", "train dim=100000000000", "more than this machine's"),
    ("embeddings", "train dim=abc", "not an integer"),
    ("embeddings", "train dim=0", "must be >= 1"),
    ("embeddings", "train dim=3 dim=4", "given twice"),
    ("embeddings", "train data_path=/nonexistent", "no such file or folder"),
    ("embeddings", "train cache_dir={file}", "is a file"),
    ("embeddings", "train", "IMDB data not found"),
    ("embeddings", "", "usage"),
    # results
    ("results", "/nonexistent", "no such folder"),
    ("results", "{file}", "is a file"),
    ("results", f"{LONG}", "at most 255"),
    ("results", "{dir}", "no runs"),
    ("results", "{dir} out={file}/t", "is a file"),
    ("results", "{dir} plot=2", "not one of 0, 1"),
    ("results", "{dir} out=a out=b", "given twice"),
    ("results", f"{{dir}} out={LONG}", "at most 255"),
    ("results", "{dir} frob=1", "unknown key"),
    ("results", "", "no RUNS_DIR"),
    # visualize
    ("visualize", "", "model= is required"),
    ("visualize", "model=/nonexistent", "no such model"),
    ("visualize", f"model={LONG}", "at most 255"),
    ("visualize", "model={dir}", "has no params.npz"),
    ("visualize", "model={dir} eps_vis=inf", "finite"),
    ("visualize", "model={dir} k=0", "must be >= 1"),
    ("visualize", "model={dir} first=1 first=2", "given twice"),
    ("visualize", "model={dir} first=2 sample=3", "choose the reviews one way"),
    ("visualize", "model={dir} text_file=/nonexistent", "no such file"),
    ("visualize", "model={dir} out={file}/x.md", "is a file"),
    ("visualize", "model={dir} lm_cache={file}/lm.npz", "is a file"),
    ("visualize", "model={dir} mode=XLA", "not one of"),
    # sweep
    ("sweep", "plan table1 hdimm=8", "did you mean hdim"),
    ("sweep", "plan table1 eps=0.5", "set by the table1 grid"),
    ("sweep", "plan table1 seeds=0", "must be >= 1"),
    ("sweep", "plan table1 seeds=1 seeds=2", "given twice"),
    ("sweep", "plan table1 eps_grid=a", "comma-separated numbers"),
    ("sweep", "plan table1 lrate=inf", "finite"),
    ("sweep", "plan table1 out={file}/c.txt", "is a file"),
    ("sweep", "plan table1 sweep_dir={file}/s", "is a file"),
    ("sweep", f"plan table1 sweep_dir={LONG}", "at most 255"),
    ("sweep", "plan grid", "needs a grid name"),
    ("sweep", "run /nonexistent", "no such file"),
    ("sweep", "run {cmds} jobs=0", "must be >= 1"),
    ("sweep", "run {cmds} hdim=3", "unknown option"),
    ("sweep", "run {file}", "is not a `python -m lstm_adv.train"),
    ("sweep", "run {cmds} compiledir={file}", "is a file"),
    ("sweep", "slurm {cmds} out={file}/s.sh", "is a file"),
    ("sweep", "slurm {cmds} max_parallel=0", "must be >= 1"),
    ("sweep", "summary /nonexistent", "no such folder"),
    ("sweep", "summary {dir}", "no runs"),
    ("sweep", "frob", "unknown command"),
    ("sweep", f"run out={LONG}", "needs a commands file"),
    ("sweep", f"slurm {{cmds}} out={LONG}.sh", "at most 255"),
    # bench
    ("bench", "reps=abc", "not an integer"),
    ("bench", "reps=-3", "must be >= 1"),
    ("bench", "floatX=float16", "not one of"),
    ("bench", "out={file}/b.json", "is a file"),
    ("bench", f"out={LONG}.json", "at most 255"),
    ("bench", "cold=maybe", "not one of 0, 1"),
    ("bench", "frob=1", "unknown key"),
    ("bench", "reps=3 reps=4", "given twice"),
    ("bench", "modes=XLA", "choose from"),
    ("bench", "reps", "not key=value"),
]

# Issue 32, point 3: every place a command writes is checked before its work, and a start-up
# refused later (the data, the word2vec file) leaves nothing behind. {proc}: a folder no one can
# create anything in, root included (Linux's /proc); {link}: a symbolic link to nowhere.
WHERE_IT_WRITES = [
    # each output a path that cannot be made: under a file, in /proc, through a broken link
    ("data", "export out={proc}/tutorial", "nothing can be created in /proc"),
    ("data", "export out={file}/sub/deeper", "is a file"),
    ("data", "export out={link}/tutorial", "symbolic link to nowhere"),
    ("data", "export out={blocked}", "imdb.pkl is a folder in the way"),
    ("data", "build cache_dir={proc}/cache", "nothing can be created"),
    ("data", "fetch cache_dir={blocked}", "aclImdb_v1.tar.gz is a folder in the way"),
    ("bench", "out={proc}/bench.json", "nothing can be created"),
    ("bench", "out={link}/bench.json", "symbolic link to nowhere"),
    ("bench", "modes=", "modes= is empty"),
    ("bench", "modes=,", "modes= is empty"),
    ("embeddings", "train out={proc}/v.bin", "nothing can be created"),
    ("embeddings", "train out={link}/v.bin", "symbolic link to nowhere"),
    ("embeddings", "train cache_dir={proc}/c", "nothing can be created"),
    ("sweep", "slurm {cmds} out={proc}/s.sh", "nothing can be created"),
    ("sweep", "slurm {cmds} out={link}/s.sh", "symbolic link to nowhere"),
    ("sweep", "slurm {cmds} compiledir={proc}/c", "nothing can be created"),
    ("sweep", "slurm {badcmds}", "line 1: saveto="),
    ("sweep", "run {badcmds}", "line 1: saveto="),
    ("sweep", "run {cmds} compiledir={proc}/c", "nothing can be created"),
    ("sweep", "run {cmds} publish={proc}/p", "nothing can be created"),
    ("sweep", "plan table1 sweep_dir={proc}/s", "nothing can be created"),
    ("sweep", "plan table1 out={link}/c.txt", "symbolic link to nowhere"),
    ("sweep", "summary {runs}", "runs.csv is a folder in the way"),
    ("results", "{runs} out={proc}/t", "nothing can be created"),
    ("results", "{runs}", "runs.csv is a folder in the way"),
    ("results", "{runs} out={blocked} by=hdim", "learning_curves.png is a folder in the way"),
    ("visualize", "model={dir} out={proc}/v.md", "nothing can be created"),
    ("visualize", "model={dir} lm_weights=0,0.1 lm_figure={proc}/f.png", "nothing can be created"),
    ("visualize", "model={dir} lm_weights=0,0.1 out={file}/v.md", "is a file"),
    ("train", f"{TOY} saveto={{proc}}/run", "nothing can be created"),
    ("train", f"{TOY} saveto={{link}}/run", "symbolic link to nowhere"),
    ("train", f"{TOY} runs_dir={{proc}}/runs", "nothing can be created"),
    ("train", f"{TOY} saveto={{blocked}}", "train.log is a folder in the way"),
    # a resume refused by the run already there: before the lock, so no .lock is left in it
    ("train", f"{TOY} hdim=6 saveto={{oldrun}}", "holds a run with hdim=8, not 6"),
    # refused once the data or the word2vec file is read: the run directory is removed again
    ("train", "progress=0 saveto=r data_path={cut_tar}", "truncated or corrupt"),
    ("train", "progress=0 data_path={cut_tar}", "truncated or corrupt"),   # runs/<name>, runs/ there
    ("train", "progress=0 saveto={file}/r data_path={cut_tar}", "is a file"),
    ("train", "progress=0 saveto={oldrun} resume=0 data_path={cut_tar}", "truncated or corrupt"),
    ("train", f"{TOY} wdim=3 saveto=a/b/r wemb_init=word2vec w2v_path={{w2v_words}}", "could not convert"),
    ("train", f"{TOY} wdim=3 saveto=r wemb_init=word2vec w2v_path={{w2v_count}}", "unexpected end of input"),
    ("train", f"{TOY} wdim=3 saveto=r wemb_init=word2vec w2v_path={{w2v_cut}}", "unexpected end of input"),
    ("train", f"{TOY} wdim=3 saveto=r wemb_init=word2vec w2v_path={{w2v_nan}}", "holds NaN or Inf"),
    ("train", f"{TOY} wdim=3 saveto={{oldrun}} resume=0 wemb_init=word2vec w2v_path={{w2v_inf}}",
     "holds NaN or Inf"),
]


def _tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


def _cut_tarball(path):
    """A tiny aclImdb-shaped .tar.gz cut in half (a download that stopped)."""
    full = path.with_name("full.tar.gz")
    with tarfile.open(full, "w:gz") as tar:
        for split, cls in (("train", "pos"), ("train", "neg"), ("test", "pos"), ("test", "neg")):
            for i in range(20):
                data = f"review {i} of {split} {cls}: the film was good and bad".encode()
                info = tarfile.TarInfo(f"aclImdb/{split}/{cls}/{i}_{7 if cls == 'pos' else 2}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[:len(data) // 2])


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("not what any command wants\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "w2v.txt").write_text("2 3\ngood 0.1 0.2 0.3\nbad 0.3 0.2 0.1\n")
    (tmp_path / "commands.txt").write_text("python -m lstm_adv.train data=toy saveto=r1\n")
    (tmp_path / "badcommands.txt").write_text("python -m lstm_adv.train data=toy saveto=afile/r1\n")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "at-all")
    # Files in the way: a folder where a command writes a file.
    for name in ("train.log", "imdb.pkl", "learning_curves.png", "aclImdb_v1.tar.gz"):
        (tmp_path / "blocked" / name).mkdir(parents=True)
    (tmp_path / "runs" / "runs.csv").mkdir(parents=True)
    # A run directory already there (hdim=8): a refused start-up must leave it as it was.
    old = tmp_path / "oldrun"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"config": {"hdim": 8}}) + "\n")
    (old / "train.log").write_text("an earlier attempt\n")
    (old / "checkpoint.npz").write_bytes(b"an earlier checkpoint")
    # word2vec files that are not: words for numbers, a count beyond the file, a binary file cut
    # inside a vector, NaN and Inf vectors.
    (tmp_path / "w2v_words.txt").write_text("2 3\ngood a b c\nbad 0.3 0.2 0.1\n")
    (tmp_path / "w2v_count.txt").write_text("9 3\ngood 0.1 0.2 0.3\nbad 0.3 0.2 0.1\n")
    (tmp_path / "w2v_nan.txt").write_text("2 3\ngood nan nan nan\nbad 0.3 0.2 0.1\n")
    (tmp_path / "w2v_inf.txt").write_text("2 3\ngood 0.1 0.2 0.3\nbad 0.3 inf 0.1\n")
    vec = np.array([0.1, 0.2, 0.3], dtype=np.float32).tobytes()
    (tmp_path / "w2v_cut.bin").write_bytes(b"2 3\ngood " + vec + b"bad " + vec[:5])
    _cut_tarball(tmp_path / "cut.tar.gz")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LSTM_ADV_OFFLINE", "1")
    monkeypatch.setenv("LSTM_ADV_COMPILEDIR", str(tmp_path / "compiledir"))
    monkeypatch.delenv("LSTM_ADV_DATA", raising=False)
    return tmp_path


#: A folder in which nothing can be created, root included (Linux's /proc).
PROC = "/proc/lstm_adv-no-such-folder"


def _argv(text, root):
    subst = {"file": str(root / "afile"), "dir": str(root / "adir"), "w2v": str(root / "w2v.txt"),
             "cmds": str(root / "commands.txt"), "badcmds": str(root / "badcommands.txt"), "proc": PROC,
             "link": str(root / "dangling"), "blocked": str(root / "blocked"), "runs": str(root / "runs"),
             "oldrun": str(root / "oldrun"), "cut_tar": str(root / "cut.tar.gz"),
             **{name: str(root / f"{name}.txt") for name in ("w2v_words", "w2v_count", "w2v_nan", "w2v_inf")},
             "w2v_cut": str(root / "w2v_cut.bin")}
    return [a.format(**subst) for a in text.split()]


def _check_refused(command, args, fragment, workdir, capsys):
    if "{proc}" in args and not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    before = _tree(workdir)
    status = MAINS[command](_argv(args, workdir))
    captured = capsys.readouterr()
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
    assert status == 2, (status, captured.out[-500:], captured.err[-500:])
    assert len(errors) == 1 and "Traceback" not in captured.err, captured.err
    assert fragment.lower() in errors[0].lower(), errors[0]
    assert _tree(workdir) == before   # no new file or folder (no .lock, no train.log), none changed


@pytest.mark.parametrize("command, args, fragment", CASES, ids=[f"{c}:{a[:50]}" for c, a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(command, args, fragment, workdir, capsys):
    _check_refused(command, args, fragment, workdir, capsys)


@pytest.mark.parametrize("command, args, fragment", WHERE_IT_WRITES,
                         ids=[f"{c}:{a[-60:]}" for c, a, _ in WHERE_IT_WRITES])
def test_where_it_writes_is_checked_first_and_nothing_is_left(command, args, fragment, workdir, capsys):
    _check_refused(command, args, fragment, workdir, capsys)


def test_every_command_checks_where_it_writes():
    assert {c for c, a, _ in WHERE_IT_WRITES if "{proc}" in a or "{link}" in a} == set(MAINS)


def test_there_are_at_least_60_cases_over_every_command():
    assert len(CASES) >= 60 and {c for c, _, _ in CASES} == set(MAINS)


@pytest.mark.parametrize("module, args", [
    ("lstm_adv.train", ["data=toy", "eps=inf"]),
    ("lstm_adv.bench", ["frob=1"]),
    ("lstm_adv.bench", ["reps=-3"]),
    ("lstm_adv.data", ["build", "workers=-2"]),
    ("lstm_adv.sweep", ["plan", "table1", "hdim=8", "hdim=16"]),
])
def test_bad_input_through_python_m(module, args, tmp_path):
    before = _tree(tmp_path)
    assert_one_line_error(run_cli(module, args, tmp_path))
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("module, args", [
    ("lstm_adv.train", ["data=toy", "max_epochs=1"]),
    ("lstm_adv.bench", ["modes=C"]),
    ("lstm_adv.evaluate", ["model=nowhere"]),
])
def test_a_bad_pytensor_flag_is_one_line_not_a_traceback(module, args, tmp_path):
    """PyTensor raises on a bad PYTENSOR_FLAGS value when first imported, outside every command's
    error handling: checked once by lstm_adv.core."""
    before = _tree(tmp_path)
    proc = run_cli(module, args, tmp_path, env={"PYTENSOR_FLAGS": "floatX=float99"})
    assert_one_line_error(proc, "PYTENSOR_FLAGS=floatX=float99", "Invalid value ('float99')", "correct or unset it")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("module, args, fragment", [
    ("lstm_adv.data", "export out={proc}/tutorial", "nothing can be created in /proc"),
    ("lstm_adv.bench", "out={proc}/bench.json", "nothing can be created in /proc"),
    ("lstm_adv.bench", "modes=", "modes= is empty"),
    ("lstm_adv.embeddings", "train out={proc}/v.bin", "nothing can be created in /proc"),
    ("lstm_adv.sweep", "slurm {cmds} out={proc}/s.sh", "nothing can be created in /proc"),
    ("lstm_adv.train", "progress=0 saveto=r data_path={cut_tar}", "truncated or corrupt"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("lstm_adv") else None)
def test_issue_32_commands_through_python_m(module, args, fragment, workdir):
    """The command lines of issue 32 as a user types them: one line, exit 2, nothing written."""
    if "{proc}" in args and not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    before = _tree(workdir)
    assert_one_line_error(run_cli(module, _argv(args, workdir), workdir), fragment)
    assert _tree(workdir) == before


def test_bench_help(tmp_path):
    proc = run_cli("lstm_adv.bench", ["--help"], tmp_path)
    assert proc.returncode == 0 and "modes=" in proc.stdout and not list(tmp_path.iterdir())


def test_model_memory_counts_a_corpus_vocabulary_larger_than_imdbs(monkeypatch):
    # IMDB's dictionary (101,746 words) bounds only IMDB's model: a corpus's vocabulary is counted
    # once loaded (`lstm_adv.train` calls model_fits with it), never capped at IMDB's.
    from lstm_adv.common import checks
    from lstm_adv.common.errors import UserError
    from lstm_adv.config import parse_args

    args = ["data=corpus.csv", "n_words=300000", "wdim=100", "hdim=8"]
    big = checks.model_bytes(parse_args(args), 300_000)
    assert big > checks.model_bytes(parse_args(args), checks.MAX_VOCAB)
    monkeypatch.setattr(checks, "physical_memory", lambda: big - 1)
    cfg = parse_args(args)   # the corpus's vocabulary is not known yet: not refused here
    with pytest.raises(UserError, match=r"n_words=300000 \(float32\) needs about .* use smaller wdim/hdim/n_words"):
        checks.model_fits(cfg, 300_000)
    checks.model_fits(cfg, 1000)   # the same keys on a corpus of 1,000 words fit
