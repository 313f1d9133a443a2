"""The user documentation stays true: its commands parse, its modules exist, its links resolve.

The doc pages (README.md and every hand-written Markdown page under experiments/: `DOCS`) are read
as text; no command is run and nothing is trained.
Every ``python -m lstm_adv.train ...`` line of their shell code blocks, and every inline code span
that is such a command (and the training keys passed through ``bash experiments/table1.sh``),
must be accepted by `lstm_adv.config.parse_args`; lines
with shell placeholders are skipped, each as its own reported skip (``pytest -rs`` lists them).
"""

import re
import shlex
from pathlib import Path

import pytest

from lstm_adv.config import parse_args

ROOT = Path(__file__).resolve().parents[1]
#: Markdown files the package's commands and the experiments' probes write under experiments/results
#: (`python -m lstm_adv.results`: table1.md, ablation.md; the random search: summary.md; the visualiser's
#: example: imdb_vis.md; experiments/*_probe.py: *_probe.md): outputs, not doc pages.
GENERATED = {"table1.md", "ablation.md", "summary.md", "imdb_vis.md"}


def _generated(path):
    return path.name in GENERATED or path.name.endswith("_probe.md")


#: the doc pages: the README, experiments/README.md (how to run), the reference pages beside it and
#: one results page per study (experiments/results/<study>/README.md).
DOCS = [ROOT / "README.md"] + sorted(p for p in (ROOT / "experiments").rglob("*.md") if not _generated(p))

#: every doc page stays readable in one sitting; the README, the entry point, shorter still
DOC_PAGE_MAX_BYTES = 40_000
README_MAX_BYTES = 30_000

#: the commands users type as ``python -m lstm_adv.<X>`` (README "Code map"; `lstm_adv/cli.py`).
COMMANDS = {"train", "results", "sweep", "visualize", "data", "embeddings", "bench", "rundir", "attack", "predict"}

#: keys of ``sweep plan table1`` that are not training keys (its --help); the rest go to every run.
TABLE1_SWEEP_KEYS = {"seeds", "eps_grid", "sweep_dir", "out"}

#: read by ``python -m lstm_adv.train`` before `parse_args`, or naming a run an earlier line makes.
TRAIN_ONLY_KEYS = {"print_config", "config"}
HELP_FLAGS = {"-h", "--help", "help"}

FENCE = re.compile(r"^\s*```")
#: a command at the start of a shell line (after VAR=value words) or after && ; |
COMMAND = re.compile(r"(?:^|&&|;|\|)\s*(?:[A-Za-z_]\w*=\S*\s+)*(?:python|bash)\s+(-m lstm_adv\.train|experiments/table1\.sh)(?=\s|$)(.*)")
#: fenced blocks whose lines are shell commands (others: the code map's tree, Python, plain text)
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
SHELL_STOP = {"|", "||", "&&", ";", ">", ">>", "2>", "&", "<"}


def _shell_lines(text):
    """The lines of the fenced shell code blocks, with backslash continuations joined."""
    lines, inside, shell, pending = [], False, False, ""
    for raw in text.splitlines():
        if FENCE.match(raw):
            inside = not inside
            shell = inside and raw.strip()[3:].strip().lower() in SHELL_BLOCKS
            continue
        if not shell:
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    return lines


def _prose(text):
    """The lines outside fenced code blocks (where headings and links live)."""
    out, inside = [], False
    for raw in text.splitlines():
        if FENCE.match(raw):
            inside = not inside
            continue
        if not inside:
            out.append(raw)
    return out


def _inline_commands(text):
    """The inline code spans of the prose that are whole commands (a span may wrap a line)."""
    paragraphs = " ".join(line if line.strip() else "\n" for line in _prose(text)).split("\n")
    return [span for para in paragraphs for span in re.findall(r"`([^`]+)`", para)
            if COMMAND.match(span)]


def _placeholder(args):
    """Why these arguments are not a literal command line, or None if they are."""
    for arg in args:
        if "$" in arg:
            return f"shell variable in {arg!r}"
        if "..." in arg or "…" in arg:
            return f"ellipsis in {arg!r}"
        if re.search(r"<[^>]*>", arg) or arg.startswith("["):
            return f"placeholder {arg!r}"
    return None


def _split_command(rest):
    """The shell words of ``rest`` up to a comment, pipe, list operator or redirection."""
    words = shlex.split(rest, comments=True)
    args = []
    for word in words:
        if word in SHELL_STOP:
            break
        args.append(word)
    return args


def _doc_commands():
    """(id, doc name, line, argv, skip reason) for every training command line in the docs."""
    found = []
    for doc in DOCS:
        name = doc.relative_to(ROOT).as_posix()
        text = doc.read_text(encoding="utf-8")
        for n, line in enumerate(_shell_lines(text) + _inline_commands(text)):
            for m in COMMAND.finditer(line):
                drop = TABLE1_SWEEP_KEYS if m.group(1).endswith("table1.sh") else set()
                args = _split_command(m.group(2))
                reason = _placeholder(args)
                argv = [a for a in args if a.split("=", 1)[0] not in drop | TRAIN_ONLY_KEYS and a not in HELP_FLAGS]
                found.append((f"{name}:{n}:{m.group(1).split('/')[-1]}", name, line.strip(), argv, reason))
    return found


DOC_COMMANDS = _doc_commands()


def test_the_docs_have_training_commands():
    # A change to the extraction that finds nothing would make every check below vacuous.
    assert sum(1 for c in DOC_COMMANDS if c[1] == "README.md" and c[4] is None) >= 4
    assert sum(1 for c in DOC_COMMANDS if c[1] == "experiments/README.md" and c[4] is None) >= 4
    assert sum(1 for c in DOC_COMMANDS if c[1] == "experiments/reference.md" and c[4] is None) >= 2


def test_the_docs_are_the_split_pages():
    # The glob must keep finding the pages by topic, so that every check below covers each of them.
    names = {d.relative_to(ROOT).as_posix() for d in DOCS}
    assert names >= {"README.md", "experiments/README.md", "experiments/reference.md",
                     "experiments/visualiser.md", "experiments/benchmarks.md", "experiments/results/README.md",
                     "experiments/results/table1/README.md", "experiments/results/ablation/README.md",
                     "experiments/results/table1-tutorial-init/README.md",
                     "experiments/results/vat_comparison/README.md"}, sorted(names)
    assert not any(_generated(d) for d in DOCS)


@pytest.mark.parametrize("doc, line, argv, reason", [c[1:] for c in DOC_COMMANDS],
                         ids=[c[0] for c in DOC_COMMANDS])
def test_training_commands_in_the_docs_parse(doc, line, argv, reason):
    if reason:
        pytest.skip(f"{doc}: not a literal command ({reason}): {line}")
    try:
        parse_args(argv)
    except Exception as err:  # a UserError names the key; any other error is a failure as well
        pytest.fail(f"{doc}: `{line}` is refused: {err}")


def test_every_module_named_in_the_docs_is_a_command():
    named = set()
    for doc in DOCS:
        for module in re.findall(r"python -m lstm_adv\.([A-Za-z_][\w.]*)", doc.read_text(encoding="utf-8")):
            named.add((doc.relative_to(ROOT).as_posix(), module.rstrip(".")))
    unknown = sorted((doc, m) for doc, m in named if m not in COMMANDS)
    assert not unknown, f"python -m lstm_adv.X with X not a command: {unknown}"
    assert {m for _, m in named} >= {"train", "results", "sweep", "visualize", "bench"}
    for command in COMMANDS:
        # Without importing: a top-level module or a package with __main__ (data/).
        pkg = ROOT / "lstm_adv"
        assert (pkg / f"{command}.py").is_file() or (pkg / command / "__main__.py").is_file(), command


def _slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link in a heading counts by its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _anchors(path):
    seen, anchors = {}, set()
    for line in _prose(path.read_text(encoding="utf-8")):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = _slug(m.group(1))
            k = seen.get(slug, 0)
            seen[slug] = k + 1
            anchors.add(slug if k == 0 else f"{slug}-{k}")
    return anchors


def _links(path):
    for line in _prose(path.read_text(encoding="utf-8")):
        line = re.sub(r"`[^`]*`", "", line)   # code spans hold brackets that are no links
        yield from re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", line)


@pytest.mark.parametrize("doc", DOCS, ids=[d.relative_to(ROOT).as_posix() for d in DOCS])
def test_relative_links_and_anchors_resolve(doc):
    broken = []
    links = list(_links(doc))
    for target in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):   # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert links, doc
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_stays_short():
    # The README is the user's entry point; reference text belongs in the pages under experiments/.
    assert (ROOT / "README.md").stat().st_size < README_MAX_BYTES


@pytest.mark.parametrize("doc", DOCS, ids=[d.relative_to(ROOT).as_posix() for d in DOCS])
def test_every_doc_page_stays_short(doc):
    # One page per topic: a page that grows past this splits by topic, as experiments/README.md did.
    size = doc.stat().st_size
    assert size < DOC_PAGE_MAX_BYTES, f"{doc.relative_to(ROOT)}: {size} bytes, over {DOC_PAGE_MAX_BYTES}"


def _python_blocks(text):
    """The fenced ``python`` code blocks of ``text``, each as one string."""
    blocks, current = [], None
    for raw in text.splitlines():
        if FENCE.match(raw):
            if current is None and raw.strip()[3:].strip().lower() == "python":
                current = []
            elif current is not None:
                blocks.append("\n".join(current))
                current = None
            continue
        if current is not None:
            current.append(raw)
    return blocks


@pytest.mark.slow
def test_readme_python_api_blocks_run(tmp_path, monkeypatch):
    """The README's Python API examples run as written, in a folder holding the Quick start's toy run
    (trained small here): load_run's predictions, then the model's internals."""
    from conftest import TINY, merge, run_cli

    proc = run_cli("lstm_adv.train", merge(TINY, ["eps=0.5", f"saveto={tmp_path / 'runs' / 'eps=0.5,data=toy'}"]), ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    blocks = _python_blocks((ROOT / "README.md").read_text())
    api = [b for b in blocks if "load_run(" in b]
    internals = [b for b in blocks if "Model(" in b]
    assert api and internals, "README.md lost its Python API blocks"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(api[0], "README.md (Python API: load_run)", "exec"), namespace)   # noqa: S102 - our own README
    clf = namespace["clf"]
    assert clf.labels == ["negative", "positive"]   # the toy's class names, as config.json records them
    assert clf.predict_proba(["a good film"]).shape == (1, 2)
    labels = clf.predict(["a good film", "a dull boring film"])
    assert len(labels) == 2 and set(labels) <= set(clf.labels)
    namespace = {}
    exec(compile(internals[0], "README.md (Python API: the model)", "exec"), namespace)   # noqa: S102
    out = namespace["out"]
    assert set(out) >= {"cost_clean", "cost_adv", "cost", "grads", "delta"}
    assert out["delta"].shape[-1] == namespace["cfg"].wdim
    assert namespace["run_cfg"].wdim == 8 and namespace["trained"].n_classes == 2


def _other_commands():
    """(doc, X, subcommand or None, keys) of every ``python -m lstm_adv.X ...`` line other than train."""
    found = []
    pattern = re.compile(r"python -m lstm_adv\.(results|sweep|visualize|data|embeddings|bench|rundir|attack|predict)\b([^`#\n]*)")
    for doc in DOCS:
        for line in _shell_lines(doc.read_text()):
            for m in pattern.finditer(line):
                words = m.group(2).split()
                words = words[:next((i for i, w in enumerate(words) if w in SHELL_STOP), len(words))]
                sub = words[0] if words and "=" not in words[0] and m.group(1) in ("sweep", "data", "embeddings",
                                                                                     "rundir") else None
                keys = [w.split("=", 1)[0].strip("[]") for w in words if "=" in w and not w.startswith(("[", "<"))]
                found.append((doc.relative_to(ROOT).as_posix(), m.group(1), sub, keys))
    return found


def _options_of(command, sub):
    """The options dataclass of ``python -m lstm_adv.<command> [sub]`` (what its main parses)."""
    from lstm_adv.analysis.results import ResultsOptions
    from lstm_adv.attack import Options as AttackOptions
    from lstm_adv.analysis.visualize.options import Options
    from lstm_adv.bench import BenchOptions
    from lstm_adv.data.embeddings import EmbeddingOptions
    from lstm_adv.data.imdb import DataOptions
    from lstm_adv.predict import PredictOptions
    from lstm_adv.rundir import PublishOptions
    from lstm_adv.sweeps.commands import RunOptions, SlurmOptions
    from lstm_adv.sweeps.plan import PlanOptions
    table = {"results": ResultsOptions, "visualize": Options, "bench": BenchOptions, "embeddings": EmbeddingOptions,
             "data": DataOptions, "rundir": PublishOptions, "attack": AttackOptions, "predict": PredictOptions,
             "sweep": {"plan": PlanOptions, "run": RunOptions, "slurm": SlurmOptions}.get(sub)}
    return table[command]


def test_other_commands_in_the_docs_use_their_keys():
    """Every key of a documented results/sweep/visualize/data/embeddings/bench/rundir line is one of
    that command's keys (``sweep plan`` also passes training keys through to every run)."""
    from lstm_adv.common.options import fields
    from lstm_adv.config import FIELDS

    lines = _other_commands()
    assert len(lines) > 10, lines
    bad = []
    for doc, command, sub, keys in lines:
        cls = _options_of(command, sub)
        if cls is None:   # sweep summary / --help: no keys
            assert not keys, (doc, command, sub, keys)
            continue
        known = set(fields(cls)) | (set(FIELDS) if (command, sub) == ("sweep", "plan") else set())
        bad += [f"{doc}: python -m lstm_adv.{command} {sub or ''} ... {k}=" for k in keys if k not in known]
    assert not bad, "\n".join(bad)


def test_objects_named_in_the_packages_strings_exist():
    # Strings saved with runs (config.json's provenance, e.g. "toy vectors (lstm_adv.data.toy.toy_vectors)")
    # must keep naming real objects when modules move.
    import importlib

    named = set()
    for path in (ROOT / "lstm_adv").rglob("*.py"):
        named |= set(re.findall(r"\"[^\"\n]*\((lstm_adv(?:\.\w+)+)\)[^\"\n]*\"", path.read_text()))
    assert named  # the pattern still finds them
    for dotted in sorted(named):
        module, _, attr = dotted.rpartition(".")
        # an object of a module, or a module itself
        assert hasattr(importlib.import_module(module), attr) or importlib.import_module(dotted), dotted


#: rows of the tables ``python -m lstm_adv.results`` writes, as the docs paste them
RESULT_ROW = re.compile(r"^\| (dev|test|average|(?:wemb_init|adv_norm)=[^|]*|[0-9.]+ \| [0-9]+ \| [0-9]+ \| s[0-9]+:[^|]*) \|")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_result_rows_in_the_docs_match_the_committed_tables(doc):
    """A table row pasted from a committed table1.md or ablation.md is still in one: no stale numbers."""
    committed = set()
    for name in ("table1.md", "ablation.md"):
        for f in (ROOT / "experiments" / "results").rglob(name):
            committed.update(line.strip() for line in f.read_text().splitlines())
    rows = [line.strip() for line in doc.read_text().splitlines() if RESULT_ROW.match(line)]
    stale = [row[:120] for row in rows if row not in committed]
    assert not stale, f"{doc.name}: rows not in any committed table1.md/ablation.md (rerun lstm_adv.results, paste again): {stale}"
