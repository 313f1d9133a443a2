"""The word attack's page: adversarial examples as text, Markdown and HTML (the paper's Tables 2-3, made real).

For each example (the first ``examples`` reviews the attack flipped, in sample order): the original
and the adversarial review side by side, the changed words marked (struck out in the original,
bold in the adversarial review), and the class probabilities before and after.
"""

import html


STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;width:100%}td{vertical-align:top;padding:.5em;border:1px solid #ccc;width:50%}
del{background:#fdd;text-decoration:line-through}ins{background:#dfd;text-decoration:none;font-weight:bold}
.probs{color:#555;font-size:.9em}"""


def _probs(probs, names):
    return ", ".join(f"P({n})={p:.3f}" for n, p in zip(names, probs))


def _f(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def _summary_lines(summary):
    return [f"method {summary['method']}, synonyms {summary['synonyms']}, {summary['n']} test reviews "
            f"(sample seed {summary['seed']}), max_change {summary['max_change']}",
            f"clean accuracy {summary['clean_acc']:.3f}, accuracy under attack {summary['adv_acc']:.3f}, "
            f"success rate {_f(summary['success_rate'])} ({summary['n_flipped']} of {summary['n_right']} right "
            f"reviews flipped), words changed {_f(summary['words_changed'])} (mean over the successes), "
            f"queries {_f(summary['queries'], '.0f')} per attacked review, {_f(summary['reviews_per_s'], '.2f')} "
            "reviews/s"]


def examples(records, n):
    """The first ``n`` flipped records."""
    return [r for r in records if r["flipped"]][:n]


def markdown(records, summary, words, names, model, n=10):
    """The page as Markdown."""
    lines = [f"# Word attack on {model}", "", *(f"- {s}" for s in _summary_lines(summary)), "",
             f"Adversarial examples: the first {n} reviews the attack flipped; ~~changed~~ in the original, "
             "**substitute** in the adversarial review.", ""]
    for r in examples(records, n):
        orig, adv = r["orig"], r["adv"]
        a = " ".join(f"~~{words[o]}~~" if o != v else words[o] for o, v in zip(orig, adv))
        b = " ".join(f"**{words[v]}**" if o != v else words[v] for o, v in zip(orig, adv))
        lines += [f"## Test review {r['test_index']} (label {names[r['label']]}, {r['n_changed']} of "
                  f"{r['n_words']} words changed, {r['queries']} queries)", "",
                  f"Original ({_probs(r['clean_probs'], names)}):", "", a, "",
                  f"Adversarial ({_probs(r['adv_probs'], names)}):", "", b, ""]
    lines.append("Made by `python -m lstm_adv.attack`.")
    return "\n".join(lines) + "\n"


def html_page(records, summary, words, names, model, n=10):
    """The page as a standalone HTML file."""
    esc = html.escape
    rows = []
    for r in examples(records, n):
        orig, adv = r["orig"], r["adv"]
        a = " ".join(f"<del>{esc(words[o])}</del>" if o != v else esc(words[o]) for o, v in zip(orig, adv))
        b = " ".join(f"<ins>{esc(words[v])}</ins>" if o != v else esc(words[v]) for o, v in zip(orig, adv))
        rows.append(f"<h2>Test review {r['test_index']} (label {esc(str(names[r['label']]))}, {r['n_changed']} of "
                    f"{r['n_words']} words changed, {r['queries']} queries)</h2>"
                    f"<table><tr><td><p class=probs>original: {esc(_probs(r['clean_probs'], names))}</p>{a}</td>"
                    f"<td><p class=probs>adversarial: {esc(_probs(r['adv_probs'], names))}</p>{b}</td></tr></table>")
    summary_html = "".join(f"<li>{esc(s)}</li>" for s in _summary_lines(summary))
    return (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>Word attack on {esc(str(model))}</title>"
            f"<style>{STYLE}</style></head><body><h1>Word attack on {esc(str(model))}</h1><ul>{summary_html}</ul>"
            + ("".join(rows) or "<p>No review was flipped.</p>")
            + "<p class=probs>Made by python -m lstm_adv.attack.</p></body></html>\n")
