"""The Space demo (examples/space/app.py) at the handler level: no browser, the real default model."""

import importlib.util
import socket
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio")

import collab  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "examples" / "space" / "app.py"
PROMPT = "What is 2 + 3?"


def load_space():
    """The app module (examples/ is not a package), imported once per test session."""
    import sys

    if "space_app" not in sys.modules:
        spec = importlib.util.spec_from_file_location("space_app", APP)
        module = importlib.util.module_from_spec(spec)
        sys.modules["space_app"] = module
        spec.loader.exec_module(module)
    return sys.modules["space_app"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def panels(update):
    """(label, text) of each visible panel in one update of the run handler."""
    space = load_space()
    return [(u["label"], u["value"]) for u in update[: space.PANELS] if u["visible"]]


@pytest.fixture
def streams(monkeypatch):
    """Records every collab stream the app opens (seeded: the app samples at its temperature)."""
    opened, original = [], collab.stream

    def recording(*args, **kwargs):
        opened.append(original(*args, **{"seed": 0, **kwargs}))
        return opened[-1]

    monkeypatch.setattr(collab, "stream", recording)
    return opened


def refuse_compute(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("bad input reached the model")

    monkeypatch.setattr(collab, "load", boom)
    monkeypatch.setattr(collab, "stream", boom)


def form(**changes):
    values = dict(prompt=PROMPT, strategy="hogwild", workers=2, visibility="default", max_new_tokens=8, temperature=0)
    values.update(changes)
    return values


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(prompt=""), "write a prompt"),
        (dict(prompt="   \n"), "write a prompt"),
        (dict(prompt="x" * 100_000), "characters"),
        (dict(workers=10_000), "Workers: this demo allows 1 to"),
        (dict(workers=0), "Workers: this demo allows 1 to"),
        (dict(workers=2.5), "whole number"),
        (dict(max_new_tokens=10**9), "Max new tokens: this demo allows"),
        (dict(temperature=-1), "Temperature"),
        (dict(strategy="best_of_n"), "Unknown strategy"),
    ],
)
def test_bad_input_gets_a_friendly_message_and_no_compute(monkeypatch, changes, message):
    space = load_space()
    refuse_compute(monkeypatch)
    run = space.Demo().run(**form(**changes))
    with pytest.raises(gr.Error, match=message):
        next(run)


def test_limits_are_module_constants_tests_and_env_can_change(monkeypatch):
    space = load_space()
    refuse_compute(monkeypatch)
    monkeypatch.setattr(space, "MAX_WORKERS", 1)
    with pytest.raises(gr.Error, match="allows 1 to 1, you asked for 2"):
        next(space.Demo().run(**form(workers=2)))


def test_settings_collab_refuses_give_its_message_before_a_forward(default_model):
    space = load_space()
    model, tokenizer = default_model
    forwards = []
    hook = model.register_forward_pre_hook(lambda *_: forwards.append(1))
    try:
        for changes in (dict(strategy="tree_of_thoughts", visibility="step"), dict(visibility="lag:-1")):
            with pytest.raises(gr.Error, match="collab refused these settings"):
                next(space.Demo(model, tokenizer).run(**form(**changes)))
    finally:
        hook.remove()
    assert forwards == []


def test_board_shows_workers_up_to_the_panel_cap_without_special_tokens():
    from collab import events as ev

    space = load_space()
    board = space.Board(panels=2)
    fresh = [board.fold(ev.TokenDelta(step, w, f"w{w}", token, text))  # (a stream's deltas leave EOS out)
             for step in (1, 2) for w in range(3) for token, text in ((5, f"a{step}"), (0, ""))]
    assert fresh == [True] + [False] * 5 + [True] + [False] * 5  # redraw once per step
    board.fold(ev.Done(2, 1, "w1", "eos"))
    shown = board.updates()
    assert [(u["visible"], u.get("label"), u["value"]) for u in shown[:2]] == [
        (True, "w0", "a1a2"), (True, "w1 · done (eos)", "a1a2")]
    assert len(shown) == 2 + 2 and len(board.names) == 3  # the third worker is tracked, not drawn


def test_a_run_streams_into_panels_and_gives_an_answer(default_model, streams):
    space = load_space()
    model, tokenizer = default_model
    updates = list(space.Demo(model, tokenizer).run(**form()))
    result = streams[0].result
    assert result.complete and len(updates) > 3  # live: several redraws, not one at the end
    shown = panels(updates[-1])
    assert len(shown) == len(result.workers) >= 3  # two roots and the finisher
    for (label, text), worker in zip(shown, result.workers):
        assert label.startswith(worker.name) and text.strip() and text.strip() == worker.text.strip()
    assert all(not u["visible"] for u in updates[-1][len(shown) : space.PANELS])
    answer, stats = updates[-1][space.PANELS :]
    assert answer == result.answer and answer.strip()
    assert f"{result.stats.generated_tokens} tokens from {len(result.workers)} workers" in stats
    # Text only grows from one redraw to the next.
    for before, after in zip(updates, updates[1:]):
        for (_, a), (_, b) in zip(panels(before), panels(after)):
            assert b.startswith(a)


def test_stop_closes_the_stream_and_keeps_the_partial_text(default_model, streams):
    space = load_space()
    model, tokenizer = default_model
    run = space.Demo(model, tokenizer).run(**form(prompt="Write a short story about a lighthouse.", max_new_tokens=200,
                                                  temperature=0.7))
    for update in run:
        if sum(len(text) for _, text in panels(update)) > 20:
            break
    run.close()  # what Gradio does on Stop or when the visitor leaves
    result = streams[0].result
    assert not result.complete and result.events[-1].kind == "stopped"
    assert all(len(w.token_ids) < 200 for w in result.workers)
    assert model.config._attn_implementation != "collab"  # the model is free for the next visitor
    kept = panels(update)
    assert len(kept) >= 2
    for (_, text), worker in zip(kept, result.workers):
        # What was shown stays; the run may be one step further (the page redraws when the
        # next step's first event arrives, and that step has run by then).
        assert worker.text.startswith(text)
    assert sum(len(text) for _, text in kept) > 20


def test_a_model_that_fails_to_load_gives_a_message_and_the_app_keeps_serving(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    space = load_space()
    missing = str(tmp_path / "no-such-model")
    run = space.Demo(missing).run(**form())
    assert "Loading the model" in next(run)[-1]
    with pytest.raises(gr.Error, match="could not be loaded"):
        next(run)

    app = space.build_app(missing)
    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(app.local_url, verbose=False)
        for _ in range(2):  # a failed load is not cached as a broken state: each visitor gets the message
            with pytest.raises(AppError, match="could not be loaded"):
                client.predict(*form().values(), api_name="/run")
        with pytest.raises(AppError, match="write a prompt"):
            client.predict(*form(prompt="").values(), api_name="/run")
    finally:
        app.close()


def test_the_queue_holds_at_most_the_configured_visitors(monkeypatch):
    space = load_space()
    monkeypatch.setattr(space, "QUEUE_SIZE", 3)
    app = space.build_app()
    assert app._queue.max_size == 3  # Gradio turns away a visitor past it
    runs = [d for d in app.fns.values() if d.api_name == "run"]
    assert len(runs) == 1 and runs[0].concurrency_limit == 1
