"""The `Stream` behind `collab.stream`: a run as an iterator of typed events, stoppable between any two steps."""

from __future__ import annotations

from typing import Iterator

from . import events as ev
from .detokenize import Detokenizer
from .partial import keeping_partial
from .result import Result


class Stream:
    """Iterate for events; `.result` is the run's result at any time (final once finished or
    closed); `close()` or leaving a `with` block stops the run cleanly between two steps."""

    def __init__(self, job):
        self._job, self._run = job, job.run
        self._events = self._generate()
        self._closed = False

    def __iter__(self) -> Iterator[ev.StreamEvent]:
        return self

    def __next__(self) -> ev.StreamEvent:
        return next(self._events)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def result(self) -> Result:
        return self._run.result

    def close(self) -> Result:
        """Stop the run (if it is still going) and return what it generated."""
        self._events.close()
        return self.result

    def _generate(self) -> Iterator[ev.StreamEvent]:
        from .runtime import progress_bar

        run, decoders, seen = self._run, {}, 0
        steps, progress, callback = run.steps(), progress_bar(run.options), run.options.callback
        try:
            while True:
                with keeping_partial(run), run.computing():
                    update = next(steps, None)
                if update is None:
                    break
                progress.update(len(update.tokens))
                if callback is not None and update.tokens:  # as in generate: an error keeps the partial result
                    with keeping_partial(run):
                        callback(update)
                for index, token in update.tokens.items():
                    worker = run.result.workers[index]
                    if index not in decoders:
                        decoders[index] = _reader(run)
                    reader = decoders[index]
                    text = reader.push((token,))
                    if worker.finish_reason:  # its last token: nothing is held back any more
                        text += reader.flush()
                    yield ev.TokenDelta(update.step, index, worker.name, token, text)
                for event in run.result.events[seen:]:
                    yield _typed(event, run.result)
                seen = len(run.result.events)
            with keeping_partial(run):
                result = self._job.conclude(run.finish())
            for event in result.events[seen:]:
                yield _typed(event, result)
            yield ev.Answer(result.answer, tuple(result.answers))
            yield ev.Finished(result.stats, result)
        finally:
            steps.close()
            progress.close()
            if not run.result.complete:  # closed early: stop between steps, keep everything
                run.finish("stopped")  # (a no-op after an error or an interrupt)


def _reader(run) -> Detokenizer:
    """Decoding as `Worker.text` is (special tokens dropped), so deltas add up to it; a run
    without a tokenizer streams ids only (empty deltas)."""
    return Detokenizer(run.text_of if run.tokenizer is not None else lambda ids: "")


def _typed(event, result: Result) -> ev.StreamEvent:
    info, index = event.info, event.worker
    name = result.workers[index].name if index is not None else ""
    if event.kind == "spawn":
        children = tuple(info["children"])
        names = tuple(result.workers[c].name for c in children)
        return ev.Spawn(event.step, index, children, tuple(info["heads"]), names)
    if event.kind == "join":
        return ev.Join(event.step, index, tuple(info["children"]))
    if event.kind == "done" and index is not None:
        return ev.Done(event.step, index, name, info.get("reason", ""))
    return ev.Note(event.step, index, event.kind, dict(info))
