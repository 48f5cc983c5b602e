"""Length bucketing: group a stream of events into batches of one padded length, within a bounded
look-ahead. Pure Python on indices and lengths; no record is read here.

A batch is padded to its longest event (hepbench.mlpf.data.pipeline), so two events of different
padded lengths in one batch waste the shorter one's difference. The bucketer holds events back
until a partner of the same padded length comes, but only within a window of
`batch_size + lookahead` consecutive events of the stream:

- Arrival: each event joins the group of its padded length; a group that reaches batch_size
  events is emitted at once.
- Overdue: once the oldest held event is batch_size + lookahead - 1 arrivals old (its window is
  full) and at least batch_size events are held, its group is emitted completed with the held
  events of the nearest padded lengths (the shorter one on a tie, then the older one): the batch
  is then as long as its longest member, as without bucketing. With fewer than batch_size held
  events the overdue one waits for the next arrivals, at most batch_size - 1 of them.
- End of the stream: the held events leave as overdue ones do, oldest first, while batch_size of
  them remain; the last fewer than batch_size form one smaller batch, or are dropped with
  drop_remainder.

So every event is emitted exactly once (but for a dropped remainder, fewer than batch_size events,
as without bucketing), every batch but the last holds batch_size events, the number of batches
equals that of plain batching, and no event leaves after one that arrived 2 * batch_size +
lookahead - 1 or more positions after it. Events inside a batch keep their stream order. The
result depends only on the stream and the lengths: the same input gives the same batches.
lookahead 0 is plain batching: consecutive runs of batch_size events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np


def event_lengths(counts: np.ndarray, max_elements: int, bin_size: int) -> np.ndarray:
    """Each event's padded length alone: its element count truncated to max_elements, rounded up
    to a multiple of bin_size, at least one bin (a batch's length is the largest of its events')."""
    n = np.minimum(np.asarray(counts, np.int64), max_elements)
    return np.maximum(-(-n // bin_size) * bin_size, bin_size)


class _Held:
    """The events held back, by padded length, each with its stream position."""

    def __init__(self) -> None:
        self.groups: dict[int, list[tuple[int, int]]] = {}  # length -> [(position, index)], oldest first
        self.size = 0

    def add(self, position: int, index: int, length: int) -> list[tuple[int, int]]:
        self.groups.setdefault(length, []).append((position, index))
        self.size += 1
        return self.groups[length]

    def take(self, length: int, count: int | None = None) -> list[tuple[int, int]]:
        group = self.groups[length]
        taken, rest = (group, []) if count is None else (group[:count], group[count:])
        if rest:
            self.groups[length] = rest
        else:
            del self.groups[length]
        self.size -= len(taken)
        return taken

    def oldest(self) -> tuple[int, int]:
        """(position, padded length) of the oldest held event."""
        return min((group[0][0], length) for length, group in self.groups.items())

    def overdue_batch(self, batch_size: int) -> list[tuple[int, int]]:
        """The oldest event's group completed with the nearest lengths (shorter on a tie, then older)."""
        _, length = self.oldest()
        batch = self.take(length)
        for other in sorted(self.groups, key=lambda k: (abs(k - length), k)):
            if len(batch) == batch_size:
                break
            batch += self.take(other, batch_size - len(batch))
        return batch


def _ordered(batch: list[tuple[int, int]]) -> list[int]:
    return [index for _, index in sorted(batch)]


def bucketed(
    order: Iterable[int],
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    lookahead: int,
    drop_remainder: bool = False,
) -> Iterator[list[int]]:
    """Batches (lists of event indices) of the events of `order`, bucketed by `lengths[index]`
    within a window of batch_size + lookahead events, as the module docstring says."""
    if batch_size < 1 or lookahead < 0:
        raise ValueError(f"batch_size must be >= 1 and lookahead >= 0, not {batch_size} and {lookahead}")
    window = batch_size + lookahead
    held = _Held()
    position = -1
    for position, index in enumerate(order):
        length = int(lengths[index])
        if len(held.add(position, index, length)) == batch_size:
            yield _ordered(held.take(length))
        while held.size >= batch_size and position - held.oldest()[0] >= window - 1:
            yield _ordered(held.overdue_batch(batch_size))
    while held.size >= batch_size:
        yield _ordered(held.overdue_batch(batch_size))
    if held.size and not drop_remainder:
        yield _ordered(held.overdue_batch(batch_size))
