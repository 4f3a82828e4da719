"""The controller and protocol parsers, without torch: split markers, limits, malformed input."""

import pytest

from collab.controller import Controller, Limits, Rejected, AwaitChildren, JoinChildren, Retire, SpawnChildren
from collab.protocols import PROTOCOLS, resolve_protocol


def feed(controller, index, text, chunk=1):
    """Reveal `text` a few characters at a time, as tokens arrive; collect the decisions."""
    out = []
    for end in range(chunk, len(text) + chunk, chunk):
        out += controller.observe(index, text[:end])
    return out


def make(name="markers", **limits):
    c = Controller(resolve_protocol(name), Limits(**limits))
    c.add(0, None)
    return c


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 100])
def test_markers_split_across_tokens_are_recognized(chunk):
    c = make()
    d = feed(c, 0, "go <spawn>task A</spawn> and <spawn>task B</spawn> then <wait>", chunk)
    starts = [x for x in d if isinstance(x, SpawnChildren)]
    assert [s.heads for s in starts] == [("\nHelper task: task A\n",), ("\nHelper task: task B\n",)]
    assert isinstance(d[-1], AwaitChildren)


def test_join_after_all_children_retire():
    c = make()
    feed(c, 0, "<spawn>a</spawn><spawn>b</spawn><wait>", 5)
    c.add(1, 0), c.add(2, 0)
    assert c.retired(1) == []
    (resume,) = c.retired(2)
    assert resume == JoinChildren(0, (1, 2)) and c.join(0, "", ["a", "b"]).text == "\n"


@pytest.mark.parametrize("name", ["multiverse", "threadweaver"])
def test_outline_formats_spawn_and_wait(name):
    tags = ("Goal", "Path") if name == "multiverse" else ("Outlines", "Thread")
    text = f"<Parallel>\n<{tags[0]}>\n<Outline>1: x</Outline>\n<Outline>2: y</Outline>\n</{tags[0]}>"
    c = make(name)
    d = feed(c, 0, text, 3)
    (start,) = [x for x in d if isinstance(x, SpawnChildren)]
    assert start.heads == (f"\n<{tags[1]}>\n1:", f"\n<{tags[1]}>\n2:") and start.wait
    c.add(1, 0)
    after = 1 if name == "multiverse" else 0  # Multiverse's engine keeps one token after </Path>
    assert feed(c, 1, f" work\n</{tags[1]}>", 2)[-1] == Retire(1, f"done marker '</{tags[1]}>'", after)


def test_limits_hold_under_endless_spawning():
    c = make(max_workers=5, max_concurrent=3, max_depth=1)
    text = ""
    decisions = []
    for i in range(50):
        text += f"<spawn>t{i}</spawn>"
        decisions += c.observe(0, text)
        for d in decisions:
            if isinstance(d, SpawnChildren):
                for _ in d.heads:
                    c.add(len(c.nodes), 0)
        decisions = [d for d in decisions if not isinstance(d, SpawnChildren)]
    assert len(c.nodes) == 3  # the lead + 2 helpers: max_concurrent=3 bounds it
    assert all(isinstance(d, Rejected) and d.kind == "refused" and "limits.max_concurrent=3" in d.reason for d in decisions)
    c.retired(1), c.retired(2)
    more = c.observe(0, text + "<spawn>again</spawn><spawn>and</spawn><spawn>more</spawn>")
    started = sum(len(d.heads) for d in more if isinstance(d, SpawnChildren))
    assert started == 2 and any("limits.max_workers=5" in d.reason for d in more if isinstance(d, Rejected))


def test_depth_limit_refuses_nested_spawns():
    c = make(max_depth=1)
    feed(c, 0, "<spawn>a</spawn>", 100)
    c.add(1, 0)
    (note,) = c.observe(1, "<spawn>deeper</spawn>")
    assert note.kind == "refused" and "limits.max_depth=1" in note.reason


@pytest.mark.parametrize(
    "text,reason",
    [
        ("<spawn></spawn>", "empty"),
        ("<spawn>a <spawn>b</spawn>", "nested"),
        ("<spawn>" + "x" * 700, "unclosed"),
    ],
)
def test_malformed_markers_are_plain_text_and_an_event(text, reason):
    c = make()
    d = feed(c, 0, text, 5)
    assert not any(isinstance(x, SpawnChildren) for x in d)
    assert any(isinstance(x, Rejected) and x.kind == "malformed" and reason in x.reason for x in d)


@pytest.mark.parametrize(
    "name,text",
    [
        ("multiverse", "<Goal>no outlines</Goal>"),
        ("multiverse", "<Goal><Outline>first: a</Outline></Goal>"),  # no id the engine reads
        ("threadweaver", "<Outlines></Outlines>"),
        ("apr", "<Calling Sub Searches>nothing<End Calling Sub Searches>"),
    ],
)
def test_malformed_protocol_blocks(name, text):
    c = make(name)
    d = feed(c, 0, text, 4)
    assert [x.kind for x in d] == ["malformed"]


def test_wait_without_helpers_is_ignored():
    c = make()
    (note,) = feed(c, 0, "<wait>", 100)
    assert note.kind == "malformed" and "no helpers" in note.reason


def test_unknown_protocol_lists_valid_ones():
    with pytest.raises(ValueError, match="valid protocols are 'markers', 'multiverse', 'threadweaver', 'apr'"):
        resolve_protocol("tree")


@pytest.mark.parametrize("bad", [{"max_concurrent": 0}, {"max_workers": -1}, {"max_depth": -1}, {"max_total_tokens": 0}])
def test_bad_limits(bad):
    with pytest.raises(ValueError, match="limits."):
        Limits(**bad)


def test_every_protocol_has_a_prompt_file():
    from collab import prompts

    for protocol in PROTOCOLS.values():
        assert prompts.load(protocol.prompt).strip()
