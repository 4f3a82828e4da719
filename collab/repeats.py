"""A stop rule for greedy loops: a worker ends (reason "repeats") once its newest sampled tokens
are one span written `times` times in a row, a span of 1 to `LONGEST` tokens, the repeated
stretch at least `LEAST` tokens long (so "0000" or a short rule of dashes never trips it).
Small models decoding greedily fall into such loops (a line, or `:1:1:1`) and run to their
budget, holding up the workers that wait on them. Pure Python, no torch: O(LONGEST) per token.

    >>> guard = Repeats(3)
    >>> [guard.feed(t) for t in [7, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5]]  # a span of 6, twice and a bit
    [False, False, False, False, False, False, False, False, False, False, False, False, False, False, False, False, False, False]
    >>> guard.feed(6)  # the third time: 18 tokens repeated
    True
"""

from __future__ import annotations

LONGEST = 64  # the longest span (tokens) the rule looks for
LEAST = 16  # the shortest repeated stretch (tokens, all copies together) that ends a worker


class Repeats:
    """Feed a worker's sampled tokens one by one; `feed` says when they have started to loop."""

    def __init__(self, times: int):
        if isinstance(times, bool) or not isinstance(times, int) or times < 2:
            raise ValueError(f"stop_repeats={times!r}: give an int >= 2 (how many times a span repeats in a row), or None")
        self.times = times
        self.tokens: list[int] = []
        self.runs = [0] * (LONGEST + 1)  # runs[p]: how many newest tokens equal the token p before them

    def feed(self, token: int) -> bool:
        """Take the next sampled token; True once the newest tokens are a span repeated `times` times."""
        tokens, runs = self.tokens, self.runs
        tokens.append(token)
        n, looping = len(tokens), False
        for p in range(1, min(LONGEST, n - 1) + 1):
            runs[p] = runs[p] + 1 if tokens[-1 - p] == token else 0
            # the newest runs[p] + p tokens have period p: the span of p tokens, (runs[p] + p) / p times
            if runs[p] >= (self.times - 1) * p and runs[p] + p >= LEAST:
                looping = True
        if n > 4 * LONGEST * self.times:  # keep what the longest repeat can reach back to
            del tokens[: n - 2 * LONGEST * self.times]
        return looping
