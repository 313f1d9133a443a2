"""Tables 2 and 3 and the summary as Markdown or a self-contained HTML page."""

import html
from pathlib import Path

import numpy as np

from ...common.publish import publishable_path
from .options import ROW_KEYS, row_labels

# rendering

LABEL_NAMES = {0: "negative", 1: "positive"}   # runs that recorded no label_names (IMDB, toy)


def label_name(run, label):
    """A class id's name: the run's ``label_names`` (K classes), else IMDB's negative/positive."""
    names = getattr(run, "label_names", None)
    if names and 0 <= label < len(names):
        return names[label]
    return LABEL_NAMES.get(label, label)


def display_word(words, i):
    return "UNK" if i == 1 else words[i]


def md_escape(token):
    token = html.escape(token, quote=False)
    for ch in "\\`*_[]|#~":
        token = token.replace(ch, "\\" + ch)
    return token


#: IMDB's HTML line break, as the tokenizer splits it: shown as a line break, not as four tokens.
LINE_BREAK = ("<", "br", "/", ">")


def render_tokens(ids, ref, words, fmt, max_tokens=0, mark=True):
    """Tokens as text; those differing from ``ref`` are bold (md) or <mark>ed (html).

    In HTML a marked word shows the word it replaced on hover (``title="was: ..."``). The tokens
    ``< br / >`` (IMDB's ``<br />``), when none of them changed, become one line break (``<br>``,
    which Markdown tables render too); consecutive breaks become one.

    Parameters
    ----------
    ids, ref : int arrays of the same length (``ref`` None: mark nothing)
    fmt : "md" or "html"
    max_tokens : int
        Show only the first N tokens, then "[...]" (0 = all).
    """
    n = len(ids) if not max_tokens else min(len(ids), max_tokens)
    out = []
    t = 0
    while t < n:
        changed = mark and ref is not None and int(ids[t]) != int(ref[t])
        span = [display_word(words, int(i)) for i in ids[t:t + len(LINE_BREAK)]]
        if tuple(span) == LINE_BREAK and not (mark and ref is not None and any(
                int(a) != int(b) for a, b in zip(ids[t:t + len(LINE_BREAK)], ref[t:t + len(LINE_BREAK)]))):
            if not out or out[-1] != "<br>":
                out.append("<br>")
            t += len(LINE_BREAK)
            continue
        w = display_word(words, int(ids[t]))
        if fmt == "md":
            w = md_escape(w)
            out.append(f"**{w}**" if changed else w)
        else:
            if changed:
                was = html.escape("was: " + display_word(words, int(ref[t])), quote=True)
                out.append(f'<mark title="{was}">{html.escape(w)}</mark>')
            else:
                out.append(html.escape(w))
        t += 1
    if n < len(ids):
        out.append("[...]" if fmt == "html" else "\\[...\\]")
    return " ".join(out)


#: Rows 2-3 of Table 2 (nearest neighbours at the training strength) are mostly one repeated
#: word: they are shown as an excerpt of this many tokens (HTML: the rest behind a click).
EXCERPT_TOKENS = 12


def render_collapsed(ids, ref, words, fmt, max_tokens=0):
    """A row shown as a short excerpt: HTML ``<details>`` with the full row inside, Markdown the excerpt."""
    full = render_tokens(ids, ref, words, fmt, max_tokens)
    if len(ids) <= EXCERPT_TOKENS:
        return full
    excerpt = render_tokens(ids[:EXCERPT_TOKENS], None if ref is None else ref[:EXCERPT_TOKENS], words, fmt)
    more = len(ids) - EXCERPT_TOKENS
    if fmt == "md":
        return f"{excerpt} \\[... {more} more tokens\\]"
    return f"<details><summary>{excerpt} &hellip; ({more} more tokens)</summary>{full}</details>"


def table2_indices(res, show):
    """Up to ``show`` reviews for Table 2: those the model classifies correctly first, in order."""
    y = np.array([r.label for r in res.reviews], dtype=np.int64)
    correct = res.pred_orig == y
    order = [i for i in range(len(res.reviews)) if correct[i]] + [i for i in range(len(res.reviews)) if not correct[i]]
    return order[:show]


def shown_path(path):
    """A path as the page shows it: relative to the repository root, never a local absolute path."""
    return publishable_path(Path(path).resolve())


def pct(v):
    """A fraction as a percentage with one decimal, or n/a."""
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _fmt_eps(v):
    return "-" if v is None else f"{v:g}"


class Doc:
    """Minimal Markdown / HTML writer with the same calls for both."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.parts = []

    def h(self, level, text):
        if self.fmt == "md":
            self.parts.append("#" * level + " " + text + "\n")
        else:
            self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text, raw=False):
        if self.fmt == "md":
            self.parts.append(text + "\n")
        else:
            self.parts.append(f"<p>{text if raw else html.escape(text)}</p>")

    def ol(self, items):
        """A numbered list (the rows of Table 2 are read by their numbers)."""
        if self.fmt == "md":
            self.parts.append("\n".join(f"{n}. {item}" for n, item in enumerate(items, 1)) + "\n")
        else:
            self.parts.append("<ol>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ol>")

    def table(self, header, rows, raw_cols=()):
        """``raw_cols``: columns already rendered for this format (token strings)."""
        if self.fmt == "md":
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for row in rows:
                cells = [c if j in raw_cols else md_escape(str(c)) for j, c in enumerate(row)]
                lines.append("| " + " | ".join(cells) + " |")
            self.parts.append("\n".join(lines) + "\n")
        else:
            out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
            for row in rows:
                cells = [c if j in raw_cols else html.escape(str(c)) for j, c in enumerate(row)]
                out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            out.append("</table>")
            self.parts.append("\n".join(out))

    def render(self, title):
        if self.fmt == "md":
            return "\n".join(self.parts)
        style = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;"
                 "line-height:1.45}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
                 "padding:.3em .6em;vertical-align:top;text-align:left}th{background:#f3f3f3}"
                 "mark{background:#ffe08a;padding:0 .1em}code{background:#f3f3f3}summary{cursor:pointer}")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
                + "\n".join(self.parts) + "\n</body></html>\n")


def row_explanations(opts):
    """One sentence per row of Table 2, in its order: what the page's terms mean."""
    top = f"KNN top {opts.top_words}"
    return [
        "original: the review as the model reads it (words outside its vocabulary are UNK).",
        f"KNN: each word's embedding moved by eps_knn={opts.eps_knn:g} (the paper's training strength; a "
        "sign step whatever norm and eps the model trained with) along sign(dL/de), the gradient of the true "
        "label's loss, then replaced by the vocabulary word whose embedding is nearest in cosine similarity.",
        f"{top}: the same, choosing only among UNK and the {opts.top_words} most frequent training words, so that "
        "rare words with barely trained embeddings cannot win.",
        f"{top} + scaled perturbation: row 3 with the step scaled down to eps_vis={opts.eps_vis:g} (the paper's "
        "size), small enough that most words stay as they were.",
        f"+ bigram smoothing: at each position the k={opts.k} nearest candidates of row 4 are rescored with a "
        f"bigram language model of the training reviews (weight lm_weight={opts.lm_weight:g}) and the whole "
        "review is decoded at once (Viterbi), so that each word fits its neighbours.",
    ]


FLIP_RATES = ("Flip rates, over the reviews the model classifies correctly: the share it gets wrong when it reads "
              "the perturbed embeddings themselves (perturbed embeddings), or the row's words, re-encoded "
              "(decoded text).")


def render(res, opts, run, summary, pairs, flipped, lm_info, bench=False):
    """The whole document (Markdown or HTML) as a string."""
    fmt = opts.format
    words = run.words
    labels = row_labels(opts)
    doc = Doc(fmt)
    title = "Adversarial examples decoded into words"
    doc.h(1, title + " (Caswell, Nie & Sen 2015, section 7)")
    c = run.cfg
    doc.p(f"Model: {shown_path(run.path)} (data={c.data}, encoder={c.encoder}, wdim={c.wdim}, hdim={c.hdim}, trained with "
          f"eps={c.eps}, alpha={c.alpha}); {summary['n_reviews']} reviews, {summary['n_tokens']} tokens; "
          f"{summary['n_correct']} classified correctly.")
    if summary.get("one_class") is not None:
        doc.p(one_class_warning(summary, run))
    doc.p(f"Perturbation eps * sign(dL(true label)/de): eps_knn={opts.eps_knn:g} for rows 2-3, "
          f"eps_vis={opts.eps_vis:g} for rows 4-5; top_words={opts.top_words}, k={opts.k}, "
          f"lm_weight={opts.lm_weight:g}; {lm_info}.")
    doc.p("The rows of Table 2, each adding one change to the row above:")
    doc.ol(row_explanations(opts))
    doc.p(FLIP_RATES)

    doc.h(2, "Summary")
    rows = []
    for n, r in enumerate(summary["rows"], 1):
        rows.append([n, labels[r["row"]], _fmt_eps(r["eps"]), pct(r["changed"]) if r["eps"] is not None else "-",
                     pct(r["flip_emb"]) if r["eps"] is not None else "-",
                     pct(r["flip_dec"]) if r["eps"] is not None else "-"])
    doc.table(["#", "row", "eps", "tokens changed", "flip rate, perturbed embeddings", "flip rate, decoded text"],
              rows)
    t = res.timings
    decode = t["nearest neighbours"] + t["bigram Viterbi"]
    per_k = 1000 * decode / max(summary["n_reviews"], 1)
    doc.p(f"Time: compiling {t['compiling']:.1f}s; gradients and classification of the original and perturbed "
          f"embeddings {t['gradients']:.2f}s; nearest neighbours "
          f"{t['nearest neighbours']:.2f}s; bigram Viterbi {t['bigram Viterbi']:.2f}s; classifying the decoded "
          f"texts {t['classifying decoded text']:.2f}s. Decoding (nearest neighbours + Viterbi): {decode:.2f}s for "
          f"{summary['n_reviews']} review{'s' if summary['n_reviews'] != 1 else ''} = {per_k:.2f}s per 1,000 reviews "
          f"({summary['n_tokens'] / max(decode, 1e-9):,.0f} tokens/s).")
    if bench:
        return doc.render(title)

    doc.h(2, "Table 2: progressively improving decodings")
    shown = table2_indices(res, opts.show)
    n_wrong = sum(res.pred_orig[i] != res.reviews[i].label for i in shown)
    doc.p("Reviews the model classifies correctly" + (f" (and {n_wrong} it does not, for want of more)" if n_wrong else "")
          + f"; rows 2-3 (eps_knn={opts.eps_knn:g}) are shortened to {EXCERPT_TOKENS} tokens"
          + (" (click to expand)" if fmt == "html" else "") + "."
          + (" Hover over a marked word to see the word it replaced." if fmt == "html" else ""))
    for i in shown:
        rv = res.reviews[i]
        doc.h(3, f"{rv.name}: true label {label_name(run, rv.label)}, {len(rv.ids)} tokens")
        doc.p(f"P(true label): original {res.p_orig[i]:.3f}; perturbed embeddings at eps_knn "
              f"{res.p_emb[float(opts.eps_knn)][i]:.3f}, at eps_vis {res.p_emb[float(opts.eps_vis)][i]:.3f}; "
              f"decoded row 5 {res.p_dec['bigram'][i]:.3f}.")
        orig = res.rows["original"][i]
        table = []
        for n, key in enumerate(ROW_KEYS, 1):
            ref = None if key == "original" else orig
            show_row = render_collapsed if key in ("knn", "knn_top") else render_tokens
            # A decoding equal to the original would read as a rendering fault: say so in its label.
            same = ref is not None and np.array_equal(res.rows[key][i], orig)
            table.append([n, labels[key] + (" (= row 1: no word changed)" if same else ""),
                          show_row(res.rows[key][i], ref, words, fmt, opts.max_tokens)])
        doc.table(["#", "row", "text (changed words marked)"], table, raw_cols=(2,))
    if len(res.reviews) > opts.show:
        doc.p(f"({len(res.reviews) - opts.show} more reviews are counted in the summary; show= displays more.)")

    if opts.pairs:
        doc.h(2, "Table 3: original and decoded adversarial review")
        if not pairs:
            doc.p("No review selected.")
        elif not flipped:
            doc.p(f"No review of this selection flips under the perturbation at eps_vis={opts.eps_vis:g}; shown "
                  "are the largest drops in P(true label). Try more reviews (sample=N) or a larger eps_vis.")
        else:
            doc.p(f"Reviews whose prediction flips under the perturbation at eps_vis={opts.eps_vis:g}; the "
                  "adversarial text is row 5 of Table 2, its changed words marked.")
        for i in pairs:
            rv = res.reviews[i]
            doc.h(3, f"{rv.name}: true label {label_name(run, rv.label)}")
            wrong = [name for name, pred in (("original text", res.pred_orig[i]),
                                             ("perturbed embeddings", res.pred_emb[float(opts.eps_vis)][i]),
                                             ("decoded text", res.pred_dec["bigram"][i])) if pred != rv.label]
            doc.p(f"P(true label): original text {res.p_orig[i]:.3f}, perturbed embeddings "
                  f"{res.p_emb[float(opts.eps_vis)][i]:.3f}, decoded text {res.p_dec['bigram'][i]:.3f}; "
                  f"misclassified: {', '.join(wrong) if wrong else 'none'}."
                  # K > 2: a flip may land on any other class; say which.
                  + (f" Predicted: original text {label_name(run, res.pred_orig[i])}, decoded text "
                     f"{label_name(run, res.pred_dec['bigram'][i])}." if len(run.label_names or ()) > 2 else ""))
            orig = res.rows["original"][i]
            if np.array_equal(res.rows["bigram"][i], orig):
                # Two identical rows would read as a rendering fault: say what happened, show the text once.
                doc.p(unchanged_note(wrong, opts.eps_vis))
                doc.table(["", "text"], [["original = adversarial", render_tokens(orig, None, words, fmt,
                                                                                  opts.max_tokens)]], raw_cols=(1,))
                continue
            doc.table(["", "text"], [
                ["original", render_tokens(orig, None, words, fmt, opts.max_tokens)],
                ["adversarial", render_tokens(res.rows["bigram"][i], orig, words, fmt, opts.max_tokens)]],
                raw_cols=(1,))
    return doc.render(title)


def one_class_warning(summary, run):
    """The page's warning for a model that predicts one class for every review (`summarize`'s ``one_class``)."""
    k = summary["one_class"]
    name = run.label_names[k] if run.label_names and k < len(run.label_names) else str(k)
    return (f"Warning: the model predicts one class ({name}) for all {summary['n_reviews']} reviews, whose labels "
            "differ: it never left the one-class plateau (see its metrics.json, left_plateau). Its probabilities "
            "and 0% flips here are not robustness; train a model that learned (README, Troubleshooting).")


def unchanged_note(wrong, eps_vis):
    """Table 3's words for a review whose decoded adversarial text is the original, word for word.

    ``wrong``: what the model misclassifies among "original text", "perturbed embeddings" and
    "decoded text" (the decoded text is the original, so it is wrong exactly when the original is).
    """
    what = (f"No word changed: at eps_vis={eps_vis:g} every perturbed embedding is still nearest its own word, so "
            "the adversarial text is the original")
    if not wrong:
        return what + ", and nothing flipped."
    if "original text" in wrong:
        return what + "; the model misclassifies the original text already."
    return what + "; only the perturbed embeddings flip the prediction, not the decoded text."
