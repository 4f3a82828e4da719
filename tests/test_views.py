"""Views and block bookkeeping: the torch-free control plane."""

import ast
from pathlib import Path

import pytest

from collab.blocks import BlockTable
from collab.views import Segment, WorkerState, full_views, none_views, resolve_visibility

CONTROL_PLANE = ["blocks.py", "views.py", "config.py"]


@pytest.mark.parametrize("name", CONTROL_PLANE)
def test_control_plane_imports_no_torch(name):
    tree = ast.parse((Path(__file__).parent.parent / "collab" / name).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "torch" not in imported and "transformers" not in imported


def test_full_views_stack_others_in_ascending_order():
    prompt = Segment(0, 10, 0)
    workers = [WorkerState(0, 1, 3, (prompt,)), WorkerState(1, 2, 0, (prompt,)), WorkerState(2, 3, 5, (prompt,))]
    views = full_views(workers)
    assert views[0].segments == (prompt, Segment(3, 5, 10))  # worker 1 has nothing yet: dropped
    assert views[0].own_offset == 15
    assert views[1].segments == (prompt, Segment(1, 3, 10), Segment(3, 5, 13))
    assert views[1].own_offset == 18
    assert views[2].segments == (prompt, Segment(1, 3, 10)) and views[2].own_offset == 13


def test_none_views_see_only_the_prompt():
    prompt = Segment(0, 7, 0)
    views = none_views([WorkerState(0, 1, 4, (prompt,)), WorkerState(1, 2, 9, (prompt,))])
    assert all(v.segments == (prompt,) and v.own_offset == 7 for v in views.values())


def test_groups_trails_and_forked_bases():
    prompt = Segment(0, 10, 0)
    parent_view = full_views([WorkerState(0, 1, 6, (prompt,))])[0]
    fork = parent_view.with_prefix(1, 6)  # what a child spawned now inherits
    assert fork == (prompt, Segment(1, 6, 10))
    kids = [WorkerState(1, 2, 4, fork, group=0), WorkerState(2, 3, 2, fork, group=0), WorkerState(3, 4, 1, fork, group=-5)]
    trail = (Segment(1, 7, 0), Segment(2, 4, 7), Segment(3, 2, 11))  # a parent that joined
    joined = WorkerState(0, 5, 0, (prompt,), trail)
    views = full_views(kids + [joined])
    assert views[1].segments == (*fork, Segment(3, 2, 16)) and views[1].own_offset == 18  # sibling 2 live
    assert views[3].segments == fork and views[3].own_offset == 16  # its own group: alone
    assert views[0].segments == (prompt, Segment(1, 7, 10), Segment(2, 4, 17), Segment(3, 2, 21))
    assert views[0].own_offset == 23


def test_resolve_visibility_lists_valid_names():
    with pytest.raises(ValueError, match="valid visibilities are 'full', 'none'"):
        resolve_visibility("everyone")


def test_slots_follow_pages_and_freed_pages_are_reused():
    table = BlockTable(page_size=2)
    a, b = table.new_block(None).id, table.new_block(0).id
    assert table.append(a, 3) == ([0, 0, 1], [0, 1, 0], [0, 1, 2])
    assert table.append(b, 1) == ([2], [0], [0])
    assert table.append(a, 1) == ([1], [1], [3])
    table.free_block(a)
    c = table.new_block(1).id
    assert table.append(c, 3)[0] == [0, 0, 1]  # lowest free pages first
    assert table.tokens == 4 and table.pages_in_use == 3


def test_capacity_doubles_up_to_a_limit_then_grows_a_page_at_a_time():
    table = BlockTable(page_size=1, limit=5)
    block = table.new_block(0).id
    seen = []
    for _ in range(7):
        table.append(block, 1)
        seen.append(table.capacity)
    assert seen == [1, 2, 4, 4, 5, 6, 7]
    free = BlockTable(page_size=1)
    b = free.new_block(0).id
    assert [free.append(b, 1) and free.capacity for _ in range(5)] == [1, 2, 4, 4, 8]
