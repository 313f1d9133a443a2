"""The tokenised caches' shared format (`lstm_adv.data.cache_pair`), used by IMDB's and a corpus's cache."""

import numpy as np

from lstm_adv.data import cache_pair


def test_pack_and_unpack_round_trip_including_empty_lists():
    for seqs in ([], [[]], [[3, 1, 2], [], [7]], [[5]]):
        flat, offsets = cache_pair.pack(seqs)
        assert flat.dtype == np.int32 and offsets.dtype == np.int64 and len(offsets) == len(seqs) + 1
        assert cache_pair.unpack(flat, offsets) == seqs
        assert cache_pair.consistent(flat, offsets, len(seqs), sum(map(len, seqs)), 8)
    flat, offsets = cache_pair.pack([[3, 9]])
    assert not cache_pair.consistent(flat, offsets, 1, 2, 9)   # an id outside the vocabulary
    assert not cache_pair.consistent(flat, offsets, 2, 2, 10)  # another count of lists


def test_a_pair_is_read_only_when_complete_and_consistent(tmp_path):
    npz, meta = tmp_path / "c.npz", tmp_path / "c.json"
    flat, offsets = cache_pair.pack([[1, 2], [3]])

    def check(arrays, m):
        return cache_pair.consistent(arrays["tokens"], arrays["offsets"], m["n"], m["n_tokens"], 4)

    cache_pair.write_pair(npz, meta, {"tokens": flat, "offsets": offsets}, {"n": 2, "n_tokens": 3})
    arrays, m = cache_pair.read_pair(npz, meta, check)
    assert cache_pair.unpack(arrays["tokens"], arrays["offsets"]) == [[1, 2], [3]] and m["n"] == 2
    meta.write_text('{"n": 3, "n_tokens": 3}')        # facts that do not match the arrays
    assert cache_pair.read_pair(npz, meta, check) is None
    meta.unlink()                                      # the arrays without the JSON: a half-written pair
    assert cache_pair.read_pair(npz, meta, check) is None
    meta.write_text('{"n": 2, "n_tokens": 3}')
    npz.write_bytes(b"not a zip")
    assert cache_pair.read_pair(npz, meta, check) is None
