"""collab on a Hugging Face Space: workers of one model write side by side over one shared KV cache.

Run it locally with `python examples/space/app.py`. The handlers are plain functions (`check_inputs`,
`Demo.run`, `Board`), so tests drive them without a browser; `build_app(model, tokenizer)` takes
an already loaded model.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # set before gradio is imported: no calls home

import gradio as gr

import collab
from collab import events as ev


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# Limits of the public demo; each can be raised with an environment variable of the same name.
MODEL = os.environ.get("COLLAB_MODEL") or None  # a hub id or local path; None: collab's embedded default
MAX_PROMPT_CHARS = _env_int("COLLAB_MAX_PROMPT_CHARS", 2000)
MAX_WORKERS = min(_env_int("COLLAB_MAX_WORKERS", 4), collab.MAX_WORKERS)
MAX_NEW_TOKENS = _env_int("COLLAB_MAX_NEW_TOKENS", 256)
PANELS = _env_int("COLLAB_PANELS", 8)  # worker panels on the page: roots, spawned children, the finisher
QUEUE_SIZE = _env_int("COLLAB_QUEUE_SIZE", 16)  # visitors waiting for their turn

# best_of_n needs a Python scorer, which a form cannot give; "plain" runs the workers with no preset.
STRATEGIES = ["hogwild", "plain"] + [s for s in collab.STRATEGIES if s not in ("hogwild", "best_of_n")]
VISIBILITIES = ["default", "full", "none", "step", "combined", "lag:2"]
EXAMPLES = [
    "What is 17 * 24? Check the result another way.",
    "Plan a three-course dinner for a vegetarian guest.",
]


def check_inputs(prompt, strategy, workers, visibility, max_new_tokens, temperature) -> dict:
    """The form's values as `collab.stream` options, or a gr.Error that says what to change.

    Runs before the model is loaded or anything is computed.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise _refused("Please write a prompt first.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise _refused(f"The prompt has {len(prompt)} characters; this demo takes up to {MAX_PROMPT_CHARS}. Please shorten it.")
    if strategy not in STRATEGIES:
        raise _refused(f"Unknown strategy {strategy!r}; pick one of: {', '.join(STRATEGIES)}.")
    workers = _whole(workers, "Workers", MAX_WORKERS)
    max_new_tokens = _whole(max_new_tokens, "Max new tokens", MAX_NEW_TOKENS)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or not 0 <= temperature <= 2:
        raise _refused(f"Temperature must be a number from 0 (greedy) to 2, got {temperature!r}.")
    return dict(
        strategy=None if strategy == "plain" else strategy,
        workers=workers,
        visibility=None if visibility in (None, "", "default") else visibility,
        max_new_tokens=max_new_tokens,
        finisher_tokens=max_new_tokens,  # the finisher's budget follows the slider too: one knob bounds the run
        do_sample=temperature > 0,
        temperature=float(temperature) if temperature > 0 else None,
    )


def _whole(value, what: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise _refused(f"{what} must be a whole number, got {value!r}.")
    if not 1 <= value <= most:
        raise _refused(f"{what}: this demo allows 1 to {most}, you asked for {int(value)}. Run collab locally for more.")
    return int(value)


def _refused(message: str) -> gr.Error:
    # The visitor's to fix: a message in the page, no traceback in the server's log.
    return gr.Error(message, print_exception=False)


class Board:
    """What the page shows, folded from a stream's events: one panel per worker, the answer, stats."""

    def __init__(self, panels: int):
        self.panels = panels
        self.names: list[str] = []
        self.texts: list[str] = []
        self.states: list[str] = []
        self.answer: str | None = None
        self.stats = ""
        self.step = None
        self.sent = None  # the (answer, stats) last sent: unchanged ones are skipped

    def fold(self, event) -> bool:
        """Take one event in; True when it opens a new step (the moment to redraw)."""
        if isinstance(event, ev.TokenDelta):
            self._worker(event.worker, event.name)
            self.texts[event.worker] += event.text  # (special tokens: already left out of deltas)
        elif isinstance(event, ev.Spawn):
            for child, name, head in zip(event.children, event.names, event.heads):
                self._worker(child, name)
                self.states[child] = f"task: {head.strip()[:40]}" if head.strip() else f"spawned by {self.names[event.worker]}"
        elif isinstance(event, ev.Done):
            self._worker(event.worker, event.name)
            self.states[event.worker] = f"done ({event.reason})" if event.reason else "done"
        elif isinstance(event, ev.Answer):
            self.answer = event.text
        elif isinstance(event, ev.Finished):
            self.stats = summary(event.result)
        step = getattr(event, "step", None)
        fresh = step is not None and step != self.step
        self.step = step if step is not None else self.step
        return fresh

    def _worker(self, index: int, name: str) -> None:
        while len(self.names) <= index:
            self.names.append(f"worker {len(self.names)}")
            self.texts.append("")
            self.states.append("")
        self.names[index] = name

    def updates(self) -> list:
        """One value per output: the panels (unused ones hidden), the answer, the stats."""
        panels = []
        for i in range(self.panels):
            if i < len(self.names):
                label = f"{self.names[i]} · {self.states[i]}" if self.states[i] else self.names[i]
                panels.append(gr.update(visible=True, label=label, value=self.texts[i]))
            else:
                panels.append(gr.update(visible=False, value=""))
        # Send the answer and stats only when they change: a redraw still in flight when the
        # visitor presses Stop must not overwrite the "Stopped" line that Stop writes there.
        tail = [self.answer or "", self.stats]
        shown = [v if self.sent is None or v != last else gr.skip() for v, last in zip(tail, self.sent or tail)]
        self.sent = tail
        return [*panels, *shown]


def summary(result: collab.Result) -> str:
    s = result.stats
    state = "" if result.complete else " (stopped early: partial)"
    return (
        f"{s.generated_tokens} tokens from {len(result.workers)} workers in {s.wall_time_s:.1f} s "
        f"({s.tokens_per_s:.1f} tok/s){state} · {s.forward_passes} forward passes · "
        f"KV cache {s.kv_tokens} tokens, {s.kv_bytes / 2**20:.1f} MiB · seed {result.seed}"
    )


class Demo:
    """The model (loaded on first use, shared by every visitor) and the run handler. The queue runs
    one run at a time (concurrency_limit=1), so the lazy load needs no lock."""

    def __init__(self, model=None, tokenizer=None):
        loaded = model is not None and not isinstance(model, str)
        self.source = None if loaded else (model or MODEL)
        self.model, self.tokenizer = (model, tokenizer) if loaded else (None, None)

    def load(self):
        # A failed load is not remembered: the next visitor tries again and the app keeps serving.
        if self.model is None:
            try:
                self.model, self.tokenizer = collab.load(self.source)
            except Exception as exc:
                raise gr.Error(
                    f"The model {self.source or 'SmolLM2-135M-Instruct (embedded)'} could not be loaded: {str(exc).rstrip('.')}. "
                    "Set COLLAB_MODEL to a model id or path, e.g. HuggingFaceTB/SmolLM2-135M-Instruct."
                ) from None
        return self.model, self.tokenizer

    def run(self, prompt, strategy, workers, visibility, max_new_tokens, temperature):
        """Stream a run into the panels; Gradio closes this generator on Stop."""
        options = check_inputs(prompt, strategy, workers, visibility, max_new_tokens, temperature)
        board = Board(PANELS)
        if self.model is None:
            board.stats = "Loading the model (first run only)…"
            yield board.updates()
        model, tokenizer = self.load()
        try:
            stream = collab.stream(model, prompt, tokenizer=tokenizer, **options)
        except Exception as exc:  # collab refuses bad combinations (e.g. a search with "step") before compute
            raise _refused(f"collab refused these settings: {exc}") from None
        warned = False
        try:
            for event in stream:
                if board.fold(event):
                    yield board.updates()
                if not warned and len(board.names) > PANELS:
                    warned = True
                    gr.Warning(f"More than {PANELS} workers ran; the page shows the first {PANELS}.")
        except Exception as exc:
            raise gr.Error(f"The run stopped with an error: {exc}") from None
        finally:
            # On Stop (or a closed tab) Gradio closes this generator: stop the run between two
            # steps and free the model for the next visitor; the panels keep what was written.
            stream.close()
        yield board.updates()


def build_app(model=None, tokenizer=None) -> gr.Blocks:
    """The Space's page. `model`: a loaded model (with its tokenizer), a hub id or path, or None
    for COLLAB_MODEL / collab's embedded default. Nothing is loaded until the first run."""
    demo = Demo(model, tokenizer)
    with gr.Blocks(title="collab: workers that think together") as app:
        gr.Markdown(
            "# collab\nSeveral workers of one small language model write at the same time over **one shared "
            "KV cache**: each sees what the others have written so far, token by token. "
            "Runs take turns: one at a time on this machine."
        )
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=4, elem_id="prompt", placeholder="Ask something…")
                gr.Examples(EXAMPLES, inputs=prompt)
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="run")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop", interactive=False)
            with gr.Column(scale=2):
                strategy = gr.Dropdown(STRATEGIES, value="hogwild", label="Strategy", elem_id="strategy",
                                       info="hogwild: workers see each other, then a finisher answers")
                workers = gr.Slider(1, MAX_WORKERS, value=min(2, MAX_WORKERS), step=1, label="Workers", elem_id="workers")
                visibility = gr.Dropdown(VISIBILITIES, value="default", label="Visibility", allow_custom_value=True,
                                         info="who sees whom; lag:K shows a peer's tokens K steps late")
                tokens = gr.Slider(1, MAX_NEW_TOKENS, value=min(64, MAX_NEW_TOKENS), step=1, label="Max new tokens per worker",
                                   elem_id="max-new-tokens")
                temperature = gr.Slider(0, 1.5, value=0.7, step=0.05, label="Temperature (0: greedy)", elem_id="temperature")
        with gr.Row():
            panels = [gr.Textbox(visible=False, lines=8, max_lines=16, min_width=240, autoscroll=True,
                                 elem_id=f"panel-{i}", elem_classes="panel") for i in range(PANELS)]
        answer = gr.Textbox(label="Answer", elem_id="answer")
        stats = gr.Markdown(elem_id="stats")

        inputs = [prompt, strategy, workers, visibility, tokens, temperature]
        # Stop is live only while this visitor's run waits or goes; one run at a time, as a step
        # routes the shared model through collab's attention.
        started = gr.on([run.click, prompt.submit], lambda: gr.Button(interactive=True), None, stop, queue=False,
                        api_visibility="private")
        running = started.then(demo.run, inputs, [*panels, answer, stats], api_name="run", concurrency_limit=1,
                               concurrency_id="model")
        running.then(lambda: gr.Button(interactive=False), None, stop, queue=False, api_visibility="private")
        stop.click(lambda: ("Stopped: the text so far stays above.", gr.Button(interactive=False)), None,
                   [stats, stop], cancels=[running], api_visibility="private")
    return app.queue(max_size=QUEUE_SIZE)


if __name__ == "__main__":
    build_app().launch()
