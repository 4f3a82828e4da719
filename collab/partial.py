"""Nothing generated is lost: how a run that stops early hands over its partial result."""

from __future__ import annotations

from contextlib import contextmanager

from .result import Result


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt that carries the partial result (`.result`) of the run it stopped."""

    def __init__(self, result: Result):
        super().__init__("collab run interrupted; the partial result is on .result")
        self.result = result


def attach_partial(exc: BaseException, result: Result) -> BaseException:
    exc.result = result
    exc.add_note("collab: the partial result of the run is attached as exc.result")
    return exc


@contextmanager
def keeping_partial(run):
    """Ctrl-C becomes `Interrupted`; any other error (a callback's, a logits processor's, a
    scorer's) is re-raised with the partial result as `exc.result`. The run is finished first,
    marked partial, so the result holds every worker's tokens and the events."""
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted(run.finish("interrupted")) from exc
    except Exception as exc:
        raise attach_partial(exc, run.finish("error"))
