"""Result's notebook display and timeline plot, on scripted runs of a tiny model (no downloads)."""

import re
import sys

import pytest
from scripted import CharTokenizer, Script

import collab
from collab.display import to_html
from conftest import tiny_model

PROMPT = "Q: add 1 and 2, then double.\n"
ROOT = "<Parallel>\n<Goal>\n<Outline>1: add</Outline>\n<Outline>2: double</Outline>\n</Goal>"
MULTIVERSE = [
    ROOT + "<Conclusion>\nso <script>alert(1)</script> 6\n</Conclusion>\n</Parallel>",
    "\n<Path>\n1: 1+2=3\n</Path>\n",
    "\n<Path>\n2: 3*2=6\n</Path>\n",
]


@pytest.fixture(scope="module")
def spawned():
    """A multiverse run: the root spawns two paths, joins them, and writes a <script> tag."""
    model = tiny_model(vocab_size=128, eos_token_id=3)
    return collab.generate(
        model, PROMPT, tokenizer=CharTokenizer(), strategy="multiverse", workers=1, max_new_tokens=200,
        template=None, seed=0, progress=False, logits_processor=[Script(len(PROMPT), MULTIVERSE)],
    )


@pytest.fixture(scope="module")
def single():
    """One worker, no tokenizer: token ids only, no text."""
    return collab.generate(tiny_model(), [5, 6, 7], workers=1, template=None, max_new_tokens=12, seed=0,
                           ignore_eos=True, progress=False)


def columns(html):
    return re.findall(r'<div class="collab-worker"[^>]*>.*?<b>(.*?)</b>', html)


def test_html_has_a_column_per_worker_children_included(spawned):
    html = spawned._repr_html_()
    assert [w.name for w in spawned.workers] == ["Alice", "Alice.1", "Alice.2"]
    assert columns(html) == ["Alice", "Alice.1", "Alice.2"]
    assert "task: &lt;Path&gt;\n1:" in html  # a child's head, escaped
    assert "done marker &#x27;&lt;/Path&gt;&#x27;" in html  # its finish reason, escaped


def test_html_escapes_worker_text(spawned):
    html = to_html(spawned)
    assert "<script>" in spawned.workers[0].text
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_html_shows_answer_tree_and_stats(spawned):
    html = to_html(spawned)
    answer = re.search(r'<div class="collab-answer">(.*?)</div>', html, re.S).group(1)
    assert spawned.answer and answer.startswith(spawned.answer.replace("<", "&lt;").replace(">", "&gt;")[:10])
    tree = re.search(r"<h4>Spawn tree</h4>\s*(<ul>.*</ul>)", html, re.S).group(1)
    # the two paths are nested in a list inside the root's item
    assert re.search(r"<li>.*?<b>Alice</b>.*?<ul><li>.*?<b>Alice\.1</b>.*?</li><li>.*?<b>Alice\.2</b>", tree, re.S)
    stats = spawned.stats
    for shown in (f"{stats.generated_tokens:,}", f"{stats.forward_passes:,}", f"{stats.kv_tokens:,}",
                  f"{stats.tokens_per_s:.1f}", f"{stats.wall_time_s:.2f} s"):
        assert shown in html


def test_html_without_tokenizer_shows_ids(single):
    html = to_html(single)
    assert columns(html) == ["Alice"]
    assert " ".join(map(str, single.workers[0].token_ids)) in html
    assert "no final answer" in html


def test_repr_stays_one_short_line(spawned):
    text = repr(spawned)
    assert "\n" not in text and len(text) < 120 and text.startswith("Result(workers=3,")


def lane_names(fig):
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def png_ok(path):
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    pixels = imread(path)
    assert pixels.shape[1] > 1000 and pixels.std() > 0.05  # drawn on, not a blank canvas


def test_plot_has_a_lane_per_worker_and_arrows(spawned, tmp_path):
    fig = spawned.plot(tmp_path / "run.png")
    png_ok(tmp_path / "run.png")
    assert len(fig.axes) == 2 and lane_names(fig) == ["Alice", "Alice.1", "Alice.2"]
    arrows = [t for t in fig.axes[0].texts if t.arrow_patch is not None]
    assert len(arrows) == 4  # two spawn arrows, two join arrows
    bars = [p.get_width() for p in fig.axes[1].patches]
    sampled = [len(w.token_ids) for w in spawned.workers]
    assert sorted(sampled) == sorted(bars[len(bars) // 2:])


def test_plot_single_worker_without_tokenizer(single, tmp_path):
    fig = single.plot(str(tmp_path / "single.png"))
    png_ok(tmp_path / "single.png")
    assert lane_names(fig) == ["Alice"]
    dots = fig.axes[0].collections[0].get_offsets()
    assert [int(x) for x, _ in dots] == single.workers[0].sample_steps


def test_plot_without_path_saves_nothing(single, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = single.plot()
    assert fig.axes and not list(tmp_path.iterdir())


def test_plot_without_matplotlib_names_the_extra(single, monkeypatch):
    from collab import plots

    plots._figure_class.cache_clear()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # what an absent package looks like
    try:
        with pytest.raises(ModuleNotFoundError, match=r"pip install collab\[plots\]"):
            single.plot()
    finally:
        plots._figure_class.cache_clear()


def test_figure_shows_itself_as_png_in_jupyter(single):
    png = single.plot()._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_stopped_run_shows_as_partial(tmp_path):
    with collab.stream(tiny_model(), [5, 6, 7], workers=2, template=None, max_new_tokens=40, seed=0,
                       ignore_eos=True) as s:
        for _, event in zip(range(6), s):
            pass
    result = s.result
    assert not result.complete and all(w.retire_step is None for w in result.workers)
    assert "partial" in to_html(result) and "partial" in repr(result)
    fig = result.plot(tmp_path / "partial.png")
    assert any("(partial)" in t.get_text() for t in fig.texts) and lane_names(fig) == ["Alice", "Bob"]


def test_the_text_tree_puts_a_late_child_under_its_own_parent():
    """Worker 2 is root 0's child, spawned after root 1: listed by index it would sit, indented,
    under root 1; depth first it sits under root 0."""
    from collab.result import Result, Worker

    workers = [Worker(0, "Alice", children=[2]), Worker(1, "Bob"), Worker(2, "Alice.1", parent=0, depth=1)]
    lines = Result(prompt_ids=[], workers=workers).tree().splitlines()
    assert [line.split(" [")[0] for line in lines] == ["Alice", "  Alice.1", "Bob"]
