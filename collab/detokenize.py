"""Incremental detokenization: a growing token sequence's text at O(1) decode work per token.

Decoding a worker's whole token list after every step costs O(n) per step, O(n^2) per run (about
1 ms per step at 4k tokens with SmolLM2's tokenizer, per worker). `Detokenizer` decodes only a
short window instead: the tokens added since the last push, after the tokens of the push before
them as context (so a SentencePiece word keeps its leading space and a byte-level character split
over tokens is seen whole). Its text equals the full decode, less an unfinished multi-byte
character at the end, which is held back until its last byte arrives. Pure Python.
"""

from __future__ import annotations

from typing import Callable, Sequence

_UNFINISHED = "\ufffd"  # what a decoder writes for the bytes of an unfinished character


class Detokenizer:
    """`push(ids)` appends tokens and returns the text they add; `text` is everything so far."""

    __slots__ = ("decode", "ids", "text", "_prefix", "_read", "_head")

    def __init__(self, decode: Callable[[list[int]], str]):
        self.decode = decode
        self.ids: list[int] = []
        self.text = ""
        # ids[_prefix:_read] is the context window (decoded: _head); ids[_read:] is not shown yet.
        self._prefix = self._read = 0
        self._head = ""

    def push(self, ids: Sequence[int]) -> str:
        self.ids.extend(ids)
        window = self.decode(self.ids[self._prefix :])
        if window.endswith(_UNFINISHED):
            return ""
        if window.startswith(self._head):
            delta = window[len(self._head) :]
            self.text += delta
        else:  # a decoder whose output depends on more than the window: decode it all, once
            full = self.decode(self.ids)
            delta = full[len(self.text) :] if full.startswith(self.text) else full  # (earlier text rewritten)
            self.text = full
        self._prefix, self._read = self._read, len(self.ids)
        self._head = self.decode(self.ids[self._prefix : self._read])
        return delta

    def flush(self) -> str:
        """The sequence has ended: the text held back (an unfinished character), as the full
        decode writes it."""
        full = self.decode(self.ids)
        rest = full[len(self.text) :] if full.startswith(self.text) else ""
        self.text, self._prefix, self._read = full, len(self.ids), len(self.ids)
        self._head = ""
        return rest

    def sync(self, ids: Sequence[int]) -> str:
        """Catch up with `ids`, a list that only grows (a worker's sampled tokens); the text."""
        if len(ids) > len(self.ids):
            self.push(ids[len(self.ids) :])
        return self.text
