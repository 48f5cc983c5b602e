"""Length bucketing on plain length arrays: every event once, determinism, the look-ahead bound,
batches of one length where the window allows, the overdue and end-of-stream rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hepbench.mlpf.data.bucketing import bucketed, event_lengths
from hepbench.mlpf.data.pipeline import shuffled

BIN = 640


def lengths_like_ttbar(n: int, seed: int = 0) -> np.ndarray:
    """Padded lengths of `n` events of about 4,700 ± 600 elements: a few distinct multiples of 640."""
    counts = np.random.default_rng(seed).normal(4700, 600, n).astype(int)
    return event_lengths(counts, 6400, BIN)


def flat(batches) -> list[int]:
    return [i for b in batches for i in b]


def padded_slots(batches, lengths) -> int:
    return sum(len(b) * int(lengths[b].max()) for b in batches)


def test_event_lengths_truncate_round_up_and_give_at_least_one_bin():
    assert event_lengths(np.array([0, 1, 640, 641, 7000]), 6400, BIN).tolist() == [640, 640, 640, 1280, 6400]


@pytest.mark.parametrize("batch_size, lookahead", [(2, 0), (2, 1), (2, 16), (3, 8), (4, 64), (2, 500)])
def test_every_event_exactly_once_and_full_batches_but_the_last(batch_size, lookahead):
    lengths = lengths_like_ttbar(301)
    out = list(bucketed(range(301), lengths, batch_size, lookahead))
    assert sorted(flat(out)) == list(range(301))
    assert all(len(b) == batch_size for b in out[:-1]) and 0 < len(out[-1]) <= batch_size
    assert len(out) == -(-301 // batch_size)  # as many batches as plain batching
    assert all(b == sorted(b) for b in out)  # stream order inside a batch


@pytest.mark.parametrize("batch_size, lookahead", [(2, 16), (3, 5)])
def test_drop_remainder_drops_fewer_than_a_batch(batch_size, lookahead):
    lengths = lengths_like_ttbar(101)
    out = list(bucketed(range(101), lengths, batch_size, lookahead, drop_remainder=True))
    assert all(len(b) == batch_size for b in out) and len(out) == 101 // batch_size
    assert len(set(flat(out))) == len(flat(out)) == 101 - 101 % batch_size


def test_lookahead_zero_is_plain_batching():
    lengths = lengths_like_ttbar(11)
    order = list(shuffled(np.arange(11), 4, np.random.default_rng(0)))
    assert list(bucketed(order, lengths, 3, 0)) == [order[0:3], order[3:6], order[6:9], order[9:]]
    assert list(bucketed(order, lengths, 3, 0, drop_remainder=True)) == [order[0:3], order[3:6], order[6:9]]


@pytest.mark.parametrize("batch_size, lookahead", [(2, 4), (2, 16), (3, 7), (4, 32)])
def test_no_event_leaves_after_one_that_came_far_behind_it(batch_size, lookahead):
    lengths = lengths_like_ttbar(500, seed=1)
    lengths[::37] = 640  # rare short events, which find a partner late or never
    out = flat(bucketed(range(500), lengths, batch_size, lookahead))
    bound = 2 * batch_size + lookahead - 1
    for k, event in enumerate(out):
        assert all(later - event < bound for later in out[:k]), (event, k)


def test_batches_are_of_one_length_when_the_window_allows():
    # Two lengths alternating: within a window of 2 + 2 every event finds a partner at once.
    lengths = np.array([640, 1280] * 50)
    out = list(bucketed(range(100), lengths, 2, 2))
    assert all(len(set(lengths[b])) == 1 for b in out)
    # Without look-ahead every batch mixes them.
    assert all(len(set(lengths[b])) == 2 for b in bucketed(range(100), lengths, 2, 0))


def test_an_overdue_event_is_completed_with_the_nearest_length_shorter_first():
    # Window 2 + 2: at event 3, event 0 (1920) is overdue. 2560 and 1280 are nearer than the older
    # 640, and equally near: the shorter one, 1280, completes it.
    assert list(bucketed(range(4), np.array([1920, 640, 2560, 1280]), 2, 2)) == [[0, 3], [1, 2]]


def test_an_overdue_event_with_too_few_held_waits_for_the_next():
    # Window 2 + 1: 1 and 2 pair at event 2, when 0 is overdue but alone; the next event completes it.
    assert list(bucketed(range(4), np.array([640, 1280, 1280, 1920]), 2, 1)) == [[1, 2], [0, 3]]


def test_end_of_stream_empties_oldest_first_with_the_nearest_lengths():
    lengths = np.array([1920, 640, 3200, 1280, 2560])  # no two alike, and no event overdue
    assert list(bucketed(range(5), lengths, 2, 100)) == [[0, 3], [1, 4], [2]]


def test_bucketing_raises_the_real_fraction_on_ttbar_like_lengths():
    counts = np.random.default_rng(2).normal(4700, 600, 2000).astype(int)
    lengths = event_lengths(counts, 6400, BIN)
    real = int(np.minimum(counts, 6400).sum())
    plain = real / padded_slots(list(bucketed(range(2000), lengths, 2, 0)), lengths)
    bucket = real / padded_slots(list(bucketed(range(2000), lengths, 2, 16)), lengths)
    bound = real / int(lengths.sum())  # every event padded alone
    assert plain < bucket <= bound and bound - bucket < 0.5 * (bound - plain)


def test_deterministic_for_a_seed_and_new_for_other_seeds_and_epochs():
    lengths = lengths_like_ttbar(200)

    def epoch(seed, number):
        order = shuffled(np.arange(200), 64, np.random.default_rng([seed, number]))
        return list(bucketed(order, lengths, 2, 16))

    assert epoch(1, 0) == epoch(1, 0)
    assert epoch(1, 0) != epoch(2, 0) and epoch(1, 0) != epoch(1, 1)
    assert list(bucketed(iter(range(200)), lengths, 2, 16)) == list(bucketed(range(200), lengths, 2, 16))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 1 and lookahead >= 0, not 0 and 2"):
        list(bucketed(range(3), [640] * 3, 0, 2))
    with pytest.raises(ValueError, match="not 2 and -1"):
        list(bucketed(range(3), [640] * 3, 2, -1))
    assert list(itertools.islice(bucketed(range(0), [], 2, 4), 1)) == []
