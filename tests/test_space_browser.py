"""The Space as it deploys, in a browser: the folder `python -m collab space DIR` writes, its
requirements installed into a fresh virtual environment and its app.py served from there
(tests/deployed_space.py; not the checkout's app), with the default model. A visitor in headless
Chromium (driven by playwright; the system's Debian Chromium, no browser download) runs and
stops runs; then several visitors at once."""

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from deployed_space import PANELS  # noqa: E402
from test_space import form  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# The machine has no network: without these flags Chromium waits on background connections.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian Chromium at /usr/bin/chromium "
                                    "(apt-get install chromium; .ci/run installs it)")
WAIT_MS = 120_000  # the model loads on the first run; the CPU may be shared


@pytest.fixture
def page(space_server):
    playwright = pytest.importorskip("playwright.sync_api")
    playwright.expect.set_options(timeout=WAIT_MS)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        page.goto(space_server.url, wait_until="domcontentloaded")
        yield page
        browser.close()


def fill_form(page, prompt: str, tokens: int, temperature: float) -> None:
    page.locator("#prompt textarea").fill(prompt)
    for elem, value in (("#max-new-tokens", tokens), ("#temperature", temperature)):
        box = page.locator(f"{elem} input[type=number]")
        box.fill(str(value))
        box.press("Enter")


def run_to_the_end(page, tokens: int) -> list[str]:
    """Ask a short question greedily with `tokens` per worker; once the answer is in, the
    visible panels' texts."""
    from playwright.sync_api import expect

    fill_form(page, "What is 2 + 3?", tokens=tokens, temperature=0)
    page.locator("#run").click()
    expect(page.locator("#answer textarea")).not_to_have_value("")
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#stats")).to_contain_text("tokens from")
    visible = [i for i in range(PANELS) if page.locator(f"#panel-{i}").is_visible()]
    assert visible == list(range(len(visible)))  # in order; the unused ones hidden
    return [page.locator(f"#panel-{i} textarea").input_value() for i in visible]


@needs_chromium
def test_a_visitor_sees_workers_fill_their_panels_and_an_answer(page, tmp_path):
    from playwright.sync_api import expect

    expect(page.locator("#stop")).to_be_disabled()  # nothing to stop yet
    texts = run_to_the_end(page, tokens=8)
    assert len(texts) >= 3 and all(t.strip() for t in texts[:2]), texts  # Alice, Bob, the finisher
    stats = page.locator("#stats").inner_text()
    assert "stopped" not in stats
    assert int(stats.split(" tokens")[0]) <= 8 * len(texts)  # the form's token budget reached the run
    page.screenshot(path=tmp_path / "space.png", full_page=True)
    if os.environ.get("COLLAB_ARTIFACTS"):
        (ROOT / "artifacts").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "space.png", ROOT / "artifacts" / "space.png")


@needs_chromium
def test_stop_ends_the_run_on_the_server_and_the_text_stays(page, space_server):
    """The server is another process: that the run ended there shows in its CPU time, which
    falls back to what an idle server uses, and in the next run, which gets the model and ends."""
    from playwright.sync_api import expect

    expect(page.locator("#run")).to_be_enabled()  # the page is up
    base = space_server.cpu_rate(2.0)  # what the server uses with no run (its event loop, the page's connection)
    # Greedy (the server cannot be seeded from here): a story that runs to its budget of 200
    # tokens per worker and the finisher's 200 more, far longer than the checks below.
    fill_form(page, "Write a short story about a lighthouse.", tokens=200, temperature=0)
    page.locator("#run").click()
    first = page.locator("#panel-0 textarea")
    page.wait_for_function("() => (document.querySelector('#panel-0 textarea')?.value || '').length > 20")
    busy = space_server.cpu_rate(2.0)  # the run computes in the server
    assert busy > base + 0.2, f"the server used {busy:.2f} CPU s/s while a run went, {base:.2f} with none: " \
                              "the measure cannot see a run"
    page.locator("#stop").click()  # waits until Stop is enabled: it is, while a run goes
    expect(page.locator("#stats")).to_contain_text("Stopped")
    expect(page.locator("#stop")).to_be_disabled()
    time.sleep(1.0)  # the step under way ends; Gradio closes the run's generator, which stops the stream
    kept = first.input_value()
    idle = space_server.cpu_rate(2.0)
    assert idle < base + (busy - base) / 4, \
        f"after Stop the server still computes: {idle:.2f} CPU s/s (a run: {busy:.2f}, no run: {base:.2f})"
    assert kept.strip() and first.input_value() == kept  # shown, and no longer growing
    expect(page.locator("#answer textarea")).to_have_value("")  # the stopped run never reached its finisher
    # The model is free and whole for the next run (the same page): it runs and ends with an answer.
    texts = run_to_the_end(page, tokens=4)
    assert texts[0] != kept and "stopped" not in page.locator("#stats").inner_text()


def test_several_visitors_at_once_all_get_answers_and_bad_input_disturbs_no_one(space_server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    visitors = [form(prompt=f"What is {i} + 3?", max_new_tokens=4) for i in range(4)]
    visitors.insert(2, form(prompt=""))
    outcomes = [None] * len(visitors)

    def visit(i):
        try:
            client = Client(space_server.url, verbose=False)
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
        t.join(timeout=180)
    assert time.monotonic() - start < 180, space_server.tail()
    bad = outcomes.pop(2)
    assert bad[0] == "message" and "write a prompt" in bad[1]
    assert all(kind in ("answer", "queue") for kind, _ in outcomes), outcomes
    answered = [values for kind, values in outcomes if kind == "answer"]
    assert len(answered) >= 2
    for values in answered:
        assert len(values) == PANELS + 2  # the panels (the Space's COLLAB_PANELS reached the app), answer, stats
        answer, stats = values[PANELS:]
        assert answer.strip() and "tokens from" in stats and "stopped" not in stats
        filled = [p for p in values[:PANELS] if p["visible"] and p["value"].strip()]
        assert len(filled) >= 2
