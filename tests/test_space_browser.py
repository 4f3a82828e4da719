"""The Space served on localhost with the default model: a visitor in headless Chromium (driven by
playwright; the system's Debian Chromium, no browser download), then several visitors at once."""

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from test_space import form, free_port, load_space, streams  # noqa: E402,F401  (streams: a fixture)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# The machine has no network: without these flags Chromium waits on background connections.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian Chromium at /usr/bin/chromium "
                                    "(apt-get install chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def server(default_model):
    app = load_space().build_app(*default_model)
    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield app.local_url
    app.close()


@pytest.fixture
def page(server):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(server, wait_until="domcontentloaded")
        yield page
        browser.close()


def fill_form(page, prompt: str, tokens: int, temperature: float) -> None:
    page.locator("#prompt textarea").fill(prompt)
    for elem, value in (("#max-new-tokens", tokens), ("#temperature", temperature)):
        box = page.locator(f"{elem} input[type=number]")
        box.fill(str(value))
        box.press("Enter")


@needs_chromium
def test_a_visitor_sees_workers_fill_their_panels_and_an_answer(page, tmp_path):
    from playwright.sync_api import expect

    expect(page.locator("#stop")).to_be_disabled()  # nothing to stop yet
    fill_form(page, "What is 2 + 3?", tokens=8, temperature=0)
    page.locator("#run").click()
    expect(page.locator("#answer textarea")).not_to_have_value("")
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#stats")).to_contain_text("tokens from")
    visible = [i for i in range(load_space().PANELS) if page.locator(f"#panel-{i}").is_visible()]
    assert len(visible) >= 3 and visible == list(range(len(visible)))  # Alice, Bob, the finisher; the rest hidden
    texts = [page.locator(f"#panel-{i} textarea").input_value() for i in visible]
    assert all(t.strip() for t in texts[:2]), texts
    stats = page.locator("#stats").inner_text()
    assert int(stats.split(" tokens")[0]) <= 8 * len(visible)  # the form's token budget reached the run
    page.screenshot(path=tmp_path / "space.png", full_page=True)
    if os.environ.get("COLLAB_ARTIFACTS"):
        (ROOT / "artifacts").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "space.png", ROOT / "artifacts" / "space.png")


@needs_chromium
def test_stop_ends_the_run_on_the_server_and_the_text_stays(page, streams):
    from playwright.sync_api import expect

    fill_form(page, "Write a short story about a lighthouse.", tokens=200, temperature=0.7)
    page.locator("#run").click()
    first = page.locator("#panel-0 textarea")
    page.wait_for_function("() => (document.querySelector('#panel-0 textarea')?.value || '').length > 20")
    page.locator("#stop").click()  # waits until Stop is enabled: it is, while a run goes
    expect(page.locator("#stats")).to_contain_text("Stopped")
    expect(page.locator("#stop")).to_be_disabled()
    deadline = time.monotonic() + 30
    while not (streams and streams[-1].result.events and streams[-1].result.events[-1].kind == "stopped"):
        assert time.monotonic() < deadline, "the run was not stopped on the server"
        time.sleep(0.1)
    result = streams[-1].result
    assert not result.complete and all(len(w.token_ids) < 200 for w in result.workers)
    kept = first.input_value()
    time.sleep(1)
    assert kept.strip() and first.input_value() == kept  # shown, and no longer growing


def test_several_visitors_at_once_all_get_answers_and_bad_input_disturbs_no_one(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    visitors = [form(prompt=f"What is {i} + 3?", max_new_tokens=4) for i in range(4)]
    visitors.insert(2, form(prompt=""))
    outcomes = [None] * len(visitors)

    def visit(i):
        try:
            client = Client(server, verbose=False)
            outcomes[i] = ("answer", client.predict(*visitors[i].values(), api_name="/run"))
        except AppError as exc:
            outcomes[i] = ("message", str(exc))
        except Exception as exc:  # a full queue is an acceptable answer; anything else is a failure
            outcomes[i] = ("queue" if "queue is full" in str(exc).lower() else "failure", repr(exc))

    threads = [threading.Thread(target=visit, args=(i,)) for i in range(len(visitors))]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert time.monotonic() - start < 120
    bad = outcomes.pop(2)
    assert bad[0] == "message" and "write a prompt" in bad[1]
    assert all(kind in ("answer", "queue") for kind, _ in outcomes), outcomes
    answered = [values for kind, values in outcomes if kind == "answer"]
    assert len(answered) >= 2
    space = load_space()
    for values in answered:
        answer, stats = values[space.PANELS :]
        assert answer.strip() and "tokens from" in stats and "stopped" not in stats
        filled = [p for p in values[: space.PANELS] if p["visible"] and p["value"].strip()]
        assert len(filled) >= 2
