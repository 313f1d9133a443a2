"""Decode adversarial perturbations of word embeddings back into words (the paper's section 7).

``python -m lstm_adv.visualize model=RUN_DIR_OR_NPZ [split=test] [first=5] ...`` (``--help``
lists every key) takes reviews from a split of the run's data set (by index, the first N, or a
seeded sample) or from text given on the command line / in a file (one review per non-empty
line, tokenised exactly as training was: `lstm_adv.data.imdb_source.tokenize`), and writes the paper's
Table 2 and Table 3 plus summary figures as Markdown (default) or a self-contained HTML page.

The perturbation
----------------
For a review with word ids ``x``, true label ``y`` and embedded input ``e = Wemb[x]``, the step
"towards the wrong label" is the one the adversarial objective trains against: it increases
the loss of the TRUE label,

    e~ = e + eps * sign(dL(theta, e; y)/de)      (`lstm_adv.core.adversarial.perturbation`, norm sign)

with the gradient of the clean loss, dropout off (`lstm_adv.core.compiled.Model.f_grad_emb`). For text
given on the command line the label is ``label=`` (1 positive, 0 negative), or by default the
model's own prediction (the step then moves away from what the model says).

The five rows of Table 2 (our reading of the paper)
---------------------------------------------------
The paper's Table 2 is "progressively improving": each row adds one fix to the row above, and
only row 4 changes the size of the perturbation. Rows 2-3 therefore perturb with the TRAINING
strength (the paper: "on the order of eps = 0.5"; our key ``eps_knn``, default 0.5, which is
why those rows are mostly garbage, "conquistadors ..." in the paper), rows 4-5 with the scaled
``eps_vis`` (paper: about 0.005).

1. ``original``: the review as the model sees it (words outside the model's vocabulary are UNK).
2. ``KNN``: each perturbed vector ``e~_t`` (at ``eps_knn``) becomes the word whose row of the
   model's ``Wemb`` has the highest cosine similarity with it, over the whole vocabulary except
   the padding id 0 (UNK, id 1, is a candidate: the paper's rows show UNK).
3. ``KNN top N``: the same, restricted to UNK and the ``top_words`` most frequent training words
   (ids 2 .. top_words+1, since the dictionary is frequency-ranked; paper: 5,000).
4. ``+ scaled perturbation``: row 3 with ``e~_t`` computed at ``eps_vis``.
5. ``+ bigram smoothing``: at each position the ``k`` most cosine-similar candidates of row 4
   are rescored with a bigram language model, and the whole sentence is decoded jointly by
   Viterbi, maximising

       sum_t cos(e~_t, Wemb[w_t])  +  lm_weight * sum_t log P(w_t | w_{t-1})

   with sentence boundaries (padding id 0 serves as <s> and </s>, so P(w_1 | <s>) and
   P(</s> | w_T) count). ``lm_weight=0`` makes row 5 equal to row 4; large values let the
   language model override the perturbation (the paper: the bigram model "often [snaps]
   perturbed words back to what they were before" and "often ... does more harm than good").
   Cosine similarities live in [-1, 1] while log-probabilities are several nats apart, so useful
   weights are small: the default 0.02 lets a word e^5 (about 150) times likelier under the LM
   win against a cosine deficit of 0.1. On a plain IMDB model (valid error 0.13) at
   eps_vis=0.005, lm_weight = 0, 0.01, 0.02, 0.05, 0.1 changed 9.8, 12.2, 14.0, 17.9, 22.2% of
   the tokens of 300 test reviews: the language model mostly pulls words towards frequent ones
   rather than back to the original.

The bigram language model
-------------------------
Interpolated Kneser-Ney for bigrams (Chen & Goodman 1998) over the model's vocabulary (ids,
UNK included), fitted on the whole IMDB training split (every training review, without the
``maxlen`` filter and including the reviews the run held out for validation: the paper
"trained a bigram model on the IMDB training corpus"):

    P(b | a) = max(c(a b) - D, 0) / c(a .)  +  D * N1+(a .) / c(a .) * P_cont(b)
    P_cont(b) = (N1+(. b) + 1) / (N1+(. .) + V)        (add-one on continuation counts)

``D = n1 / (n1 + 2 n2)`` from the counts of bigrams seen once and twice (clipped to
[0.05, 0.95]); an unseen history falls back to ``P_cont``. Every conditional distribution sums
to one. The counts are cached in the lstm_adv cache folder (``$LSTM_ADV_CACHE``, else the user
cache folder) as ``bigram/<data>-<vocabulary digest>.npz``, never in the run directory (it holds
what training wrote); ``lm_cache=PATH`` chooses the file. The page says where it went.

Table 3 and the summary
-----------------------
Table 3 pairs the original and the row-5 decoding (changed words **bold** in Markdown,
``<mark>`` in HTML) for up to ``pairs`` reviews whose prediction flips under the continuous
perturbation at ``eps_vis`` (originally classified correctly, wrong after the step), preferring
those whose decoded text still fools the model, then those short enough to show in full
(``max_tokens``), then the lowest P(true label) on the decoded text. For each it gives
P(true label) on the original text, on the perturbed embeddings and on the decoded text
(re-encoded and classified). When no review of the selection flips, the largest drops in
P(true label) are shown and labelled so; a pair whose decoded text is the original word for word
is shown once, with a line saying that no word changed and what flipped, if anything.

The page numbers the rows of Table 2 and explains each in one sentence, and the flip rates.

The summary gives, per row, the fraction of tokens that differ from the original, the flip
rate of the continuous perturbation and of the decoded text (both over the reviews that were
classified correctly), and the time each stage took. Nearest neighbours are batched matrix
products of L2-normalised rows; the Viterbi decoder and the language-model lookups run on
whole batches of reviews at once. ``bench=N`` decodes N reviews (cycling through the split if
it is shorter) and prints only the summary, to measure the speed.

Splits are sorted by length when loaded (`lstm_adv.data.finalize`), so ``index=`` counts in
that order and ``first=N`` gives the N shortest reviews; ``sample=N`` draws a seeded sample.
"""
