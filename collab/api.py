"""`collab.generate`: the one call users make."""

from __future__ import annotations

from typing import Any, Callable

from .config import RunOptions
from .models import load
from .result import Result
from .runtime import Run
from .sampling import draw_seed, resolve_config
from .support import check_model
from .template import check_prompt, encode


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt that carries the partial result (`.result`) of the run it stopped."""

    def __init__(self, result: Result):
        super().__init__("collab run interrupted; the partial result is on .result")
        self.result = result


def generate(
    model=None,
    prompt: str | list = "",
    *,
    tokenizer=None,
    workers: int = 2,
    visibility: str = "full",
    template: str | None = "default",
    max_new_tokens: int = 256,
    do_sample: bool | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    repetition_penalty: float | None = None,
    seed: int | None = None,
    ignore_eos: bool = False,
    output_logits: bool = False,
    logits_processor: list | None = None,
    callback: Callable[[Any], None] | None = None,
    progress: bool = False,
    page_size: int = 32,
) -> Result:
    """Run `workers` workers of one model over one shared KV cache and return a `Result`.

    model: a loaded causal LM, a model id or local path, or None for the embedded default.
    prompt: a string, a list of chat messages, or a list of token ids.
    template: "default" (chat template + collaboration prompt + worker headers) or None (raw).
    visibility: "full" (each worker sees every other worker's tokens fed before this step) or
    "none" (each worker sees only the prompt and itself).
    Sampling options default to the model's generation config; `seed` makes runs reproducible
    (each worker draws from its own generator). `callback(update)` runs after every step.

    On KeyboardInterrupt, `collab.Interrupted` (a KeyboardInterrupt) is raised with the partial
    result on `.result`; any other exception (a callback's, a logits processor's) is re-raised
    with the partial result attached as `exc.result`.

    >>> result = generate(None, "What is 2 + 3?", workers=2, max_new_tokens=32)  # doctest: +SKIP
    >>> print(result.text)  # doctest: +SKIP
    """
    options = RunOptions(
        workers=workers,
        visibility=visibility,
        max_new_tokens=max_new_tokens,
        ignore_eos=ignore_eos,
        output_logits=output_logits,
        page_size=page_size,
        progress=progress,
        callback=callback,
    )
    if logits_processor is not None and not all(callable(p) for p in logits_processor):
        raise TypeError("logits_processor must be a list of callables (transformers LogitsProcessor)")
    if model is None or isinstance(model, str):
        loaded, loaded_tokenizer = load(model)
        model, tokenizer = loaded, tokenizer or loaded_tokenizer
    check_prompt(prompt, template, tokenizer)
    encoded = encode(prompt, template, tokenizer, workers)
    if not encoded.prompt_ids:
        raise ValueError("the prompt tokenizes to no tokens: pass a non-empty prompt")
    check_model(model, options.longest_view(len(encoded.prompt_ids), [len(h) for h in encoded.headers]))
    generation = resolve_config(
        model,
        do_sample=do_sample,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        repetition_penalty=repetition_penalty,
    )
    seed = draw_seed() if seed is None else seed
    run = Run(model, tokenizer, encoded, options, generation, logits_processor, seed)
    try:
        return run.execute()
    except KeyboardInterrupt as exc:
        raise Interrupted(run.finish("interrupted")) from exc
    except Exception as exc:
        exc.result = run.finish("error")
        exc.add_note("collab: the partial result of the run is attached as exc.result")
        raise
