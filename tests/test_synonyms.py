"""The substitution candidates: the shipped WordNet table, a user's table, and the vocabulary rules."""

import gzip

import numpy as np
import pytest

from lstm_adv.common.errors import UserError
from lstm_adv.data import synonyms as syn


def test_known_wordnet_pairs_are_in_the_shipped_table():
    wn = syn.load_synonyms("wordnet")
    assert "film" in wn.synonyms("movie") and "movie" in wn.synonyms("film")
    assert "awful" in wn.synonyms("terrible")
    # an inflected token is looked up by its lemmas, as PWWS's wordnet.synsets(token) does
    assert {"movie", "film"} <= set(wn.synonyms("movies"))
    assert "mouse" in wn.synonyms("mice")   # an irregular form (noun.exc)
    assert "movie" not in wn.synonyms("movie")
    assert wn.synonyms("qwxzv") == []


def test_the_table_ships_with_wordnets_licence():
    text = (syn.RESOURCES / "WORDNET_LICENSE").read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text
    with gzip.open(syn.RESOURCES / "wordnet_synonyms.tsv.gz", "rt") as f:
        first = f.readline()
    assert "\t" in first


def test_substitutes_only_from_the_vocabulary_and_never_stopwords():
    words = ["<pad>", "<unk>", "the", "movie", "not", "film", "good", "flick", "picture", "cinema"]
    table = syn.SubstitutionTable(syn.load_synonyms("wordnet"), words, n_words=8)   # picture, cinema: UNK
    ids = {w: i for i, w in enumerate(words)}
    assert set(table.subs[ids["movie"]]) == {ids["film"], ids["flick"]}
    for w in ("the", "not"):   # stopwords: never replaced
        assert len(table.subs[ids[w]]) == 0
    for i, s in enumerate(table.subs):
        assert all(2 <= j < 8 and j != i and words[j] not in syn.stopwords() for j in s)
    assert len(table.subs[0]) == len(table.subs[1]) == 0
    assert table.has_substitutes([ids["movie"], ids["the"], 9, 0]).tolist() == [True, False, False, False]
    info = table.info()
    assert info["synonyms"] == "wordnet" and info["substitutes_in_vocabulary_only"] is True
    assert "stopwords.txt" in info["stopwords"]


def test_padded_sets_put_the_word_first_and_mask_the_padding():
    words = ["<pad>", "<unk>", "movie", "film", "flick", "the"]
    table = syn.SubstitutionTable(syn.load_synonyms("wordnet"), words, 6)
    ids, mask = table.padded(2)
    assert ids.shape == mask.shape == (6, 2)
    assert (ids[:, 0] == np.arange(6)).all() and (mask[:, 0] == 1).all()
    assert mask[5].tolist() == [1, 0] and ids[5].tolist() == [5, 5]   # "the": itself only
    assert mask[2].tolist() == [1, 1] and ids[2, 1] in (3, 4)


def test_a_users_table(tmp_path):
    path = tmp_path / "subs.tsv"
    path.write_text("# counter-fitted neighbours\ngood\tfine great\ngreat\tgood\n")
    src = syn.load_synonyms(str(path))
    assert src.synonyms("good") == ["fine", "great"] and src.synonyms("goods") == []   # no lemmatising
    table = syn.SubstitutionTable(src, ["<pad>", "<unk>", "good", "great"], 4)
    assert table.subs[2].tolist() == [3] and table.info()["synonyms"] == str(path)


@pytest.mark.parametrize("content, expected", [
    ("good\n", "line 1: expected a word, a tab, then its substitutes"),
    ("good\tfine\nbad\t \n", "line 2"),
    ("# only a comment\n", "no word with substitutes"),
    (b"\xff\xfegood\tfine", "not UTF-8"),
])
def test_a_malformed_table_is_one_line(tmp_path, content, expected):
    path = tmp_path / "subs.tsv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError, match=expected):
        syn.load_synonyms(str(path))
    with pytest.raises(UserError, match="no such file"):
        syn.load_synonyms(str(tmp_path / "missing.tsv"))


def _aug_table():
    words = ["<pad>", "<unk>", "the", "movie", "film", "flick", "good", "not", "qwxzv", "great"]
    return words, syn.SubstitutionTable(syn.load_synonyms("wordnet"), words, len(words))


def test_augmentation_replaces_at_rate_p_and_only_where_it_may():
    words, table = _aug_table()
    seqs = [list(np.random.default_rng(i).integers(1, len(words), size=50)) for i in range(400)]
    p = 0.3
    out = syn.augment(seqs, table, p, np.random.default_rng(0))
    assert [len(s) for s in out] == [len(s) for s in seqs]
    before, after = np.concatenate(seqs), np.concatenate(out)
    eligible = table.has_substitutes(before)
    assert not eligible[np.isin(before, [1, 2, 7, 8])].any()   # UNK, stopwords, a word without synonyms
    np.testing.assert_array_equal(after[~eligible], before[~eligible])   # never changed
    changed = after != before
    assert all(a in table.subs[b] for a, b in zip(after[changed], before[changed]))   # in-vocabulary substitutes
    n = int(eligible.sum())
    sd = np.sqrt(n * p * (1 - p))
    assert abs(int(changed.sum()) - n * p) < 4 * sd   # a replacement is never the word itself
    assert seqs[0] != out[0] and seqs == [list(np.random.default_rng(i).integers(1, len(words), size=50))
                                          for i in range(400)]   # the input is not changed
    drawn = syn.augment([[3] * 200], table, 1.0, np.random.default_rng(1))[0]
    assert set(drawn) == set(table.subs[3].tolist())   # p=1: every token, each substitute drawn
    assert syn.augment(seqs[:3], table, 0.0, np.random.default_rng(0)) == [list(s) for s in seqs[:3]]
