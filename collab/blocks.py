"""Block bookkeeping for the shared KV store: pages, blocks, slots. Pure Python, no torch.

Every token's keys and values are stored once, in a *slot* of a fixed-size *page*. A *block* is
an ordered list of pages owned by one writer (the prompt, or one worker); its keys are rotated at
block-local positions 0..length-1, so a block can be placed anywhere in a view for free.

Pages come from one arena per layer (see `collab.cache`). The arena has a capacity in pages; when
the table needs more, the capacity doubles (amortized growth: the cache copies the arena once per
doubling, never once per step). Freed pages return to a free list and are reused first.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Block:
    """One writer's run of tokens. `pages[i]` holds local positions i*page_size .. (i+1)*page_size-1."""

    id: int
    owner: int | None  # worker index; None for the prompt block
    pages: list[int] = field(default_factory=list)
    length: int = 0


class BlockTable:
    """Allocates pages to blocks and maps each new token to its (page, offset) slot."""

    def __init__(self, page_size: int = 32, capacity: int = 0, limit: int | None = None):
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.page_size = page_size
        self.limit = limit  # doubling stops here (a KV cap); past it the arena grows a page at a time
        self.capacity = 0  # pages the arena must hold
        self.free: list[int] = []
        self.blocks: dict[int, Block] = {}
        self._next_block = 0
        self.reserve(capacity)

    # -- pages -------------------------------------------------------------------------------
    def reserve(self, pages: int) -> None:
        """Make the capacity at least `pages` (called up front with what the budgets need)."""
        if pages > self.capacity:
            self.free.extend(range(self.capacity, pages))
            self.free.sort(reverse=True)  # pop() hands out the lowest page first
            self.capacity = pages

    def _take_page(self) -> int:
        if not self.free:
            grown = 2 * self.capacity if self.limit is None else min(2 * self.capacity, self.limit)
            self.reserve(max(self.capacity + 1, grown))
        return self.free.pop()

    @property
    def pages_in_use(self) -> int:
        return self.capacity - len(self.free)

    def pages_for(self, tokens: int) -> int:
        return -(-tokens // self.page_size)

    # -- blocks ------------------------------------------------------------------------------
    def new_block(self, owner: int | None) -> Block:
        block = Block(self._next_block, owner)
        self.blocks[block.id] = block
        self._next_block += 1
        return block

    def append(self, block_id: int, n: int) -> tuple[list[int], list[int], list[int]]:
        """Extend a block by `n` tokens; return their (pages, offsets, local positions)."""
        block = self.blocks[block_id]
        start = block.length
        pages, offsets = [], []
        for pos in range(start, start + n):
            page_index, offset = divmod(pos, self.page_size)
            if page_index == len(block.pages):
                block.pages.append(self._take_page())
            pages.append(block.pages[page_index])
            offsets.append(offset)
        block.length += n
        return pages, offsets, list(range(start, start + n))

    def free_block(self, block_id: int) -> None:
        block = self.blocks.pop(block_id)
        self.free.extend(block.pages)
        self.free.sort(reverse=True)

    @property
    def tokens(self) -> int:
        return sum(b.length for b in self.blocks.values())
