"""`collab.generate`: the one call users make."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from transformers import GenerationConfig

from . import answers, memory, prompts, tensor_parallel
from .attention import resolve_backend
from .config import RunOptions
from .controller import Controller, Limits
from .habits import check_model_argument, eos_from, prompt_from, refuse_unknown, streamers
from .models import has_adapter, load, trained_protocol
from .options import normalize
from .partial import Interrupted, keeping_partial  # noqa: F401  (Interrupted: collab's public name)
from .protocols import resolve_protocol
from .result import Result
from .runtime import Adaptive, Run
from .search import SEARCHES, SearchOptions
from .search_run import SearchRun, SelfJudge
from .streaming import Stream
from .sampling import draw_seed, resolve_config
from .strategies import resolve_strategy
from .support import check_model, uncompiled
from .template import check_prompt, check_token_ids, check_tokenizer, encode


def generate(
    model=None,
    prompt: str | list = "",
    *,
    tokenizer=None,
    workers: int = 2,
    visibility: str | None = None,
    template: str | None = "default",
    strategy: str | None = None,
    protocol: str | None = None,
    limits: Limits | dict | None = None,
    finisher: bool | None = None,
    finisher_tokens: int = 64,
    scorer: Callable[[str], float] | None = None,
    search: dict | SearchOptions | None = None,
    answer: str = "auto",
    max_new_tokens: int | None = None,
    do_sample: bool | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    repetition_penalty: float | None = None,
    stop_repeats: int | None = None,
    seed: int | None = None,
    ignore_eos: bool = False,
    output_logits: bool = False,
    logits_processor: list | None = None,
    callback: Callable[[Any], None] | None = None,
    progress: bool = True,
    page_size: int = 64,
    attention: str = "auto",
    step_end: Callable[[str], bool] | None = None,
    kv_cap: int | str | None = None,
    generation_config=None,
    eos_token_id: int | list[int] | None = None,
    pad_token_id: int | None = None,
    streamer=None,
    input_ids=None,
    attention_mask=None,
    **transformers_options,
) -> Result:
    """Run workers of one model over one shared KV cache and return a `Result`.

    model: a loaded causal LM, a model id or local path, or None for the embedded default.
    prompt: a string, a list of chat messages, or a list of token ids.
    template: "default" (chat template + system prompt + worker headers) or None (raw).
    visibility: "full" (each worker sees every peer's tokens fed before this step) or "none".
    strategy: a preset ("hogwild", "self_consistency", "best_of_n", "skeleton", "adaptive",
    "multiverse", "threadweaver", "apr", "parathinker", "tree_of_thoughts", "mcts"); protocol: a marker protocol read by
    the adaptive controller; limits: `collab.Limits` on spawning; finisher: a final-answer pass
    over the whole cache; scorer: `scorer(text) -> float`, picks the best worker for "best_of_n"
    and values steps for "tree_of_thoughts" and "mcts" (default there: the model judges itself);
    search: `collab.SearchOptions` or a dict of them (branching, beam, budgets); answer: how to extract
    the final answer ("auto", "boxed", "number", "code"); step_end: a custom end-of-step rule,
    `step_end(text_before_a_blank_line) -> bool` (see collab.steps); stop_repeats: end a worker
    (reason "repeats") once its newest tokens are one span written that many times in a row (a
    greedy loop; see collab.repeats), its protocol then treats it as ended; kv_cap: bytes (or "2GiB")
    of KV the run may hold: past it the youngest workers end with reason "kv_cap". Runs whose
    budgets allow more KV than the free memory are refused up front (see collab.memory).
    Sampling options default to the model's generation config (or `generation_config`, which
    also gives `max_new_tokens` and `eos_token_id` when they are left None; else 256 tokens per
    worker); `seed` makes runs reproducible. transformers habits: `input_ids` (a 1-D or [1, T]
    tensor, as is a tensor prompt), an all-ones `attention_mask`, `eos_token_id`, `pad_token_id`
    (ignored: collab never pads), `streamer` (one, for the first worker, or one per root worker);
    `max_length`, `num_return_sequences` and the like are refused with collab's equivalent.
    A model loaded with tensor parallelism (`collab.load(path, tp_plan="auto")` under torchrun)
    runs alike on every rank, with rank 0's sampled tokens; only rank 0 shows progress and calls
    `callback` and `streamer`; every rank returns the result.

    On KeyboardInterrupt, `collab.Interrupted` (a KeyboardInterrupt) is raised with the partial
    result on `.result`; any other exception (a callback's, a logits processor's) is re-raised
    with the partial result attached as `exc.result`.

    >>> result = generate(None, "What is 2 + 3?", workers=2, max_new_tokens=32)  # doctest: +SKIP
    >>> print(result.text)  # doctest: +SKIP
    """
    options = dict(locals())
    refuse_unknown(options.pop("transformers_options"), options)
    return _prepare(**options).execute()


def stream(model=None, prompt: str | list = "", **options) -> "Stream":
    """Run like `generate`, as an iterator of typed events (`collab.events`): token deltas per
    worker, spawns, joins, done workers, the final answer and the stats, so a UI can render live.

    Takes the same options as `generate`, honoured alike (`callback` after every step, the
    progress bar on stderr when `progress=True`; it is off unless asked for). Closing the
    stream (`close()`, leaving a `with` block) stops the run between two steps and keeps what
    was generated on `.result`; the model is routed through collab only while a step runs.

    >>> with stream(None, "What is 2 + 3?", workers=2, max_new_tokens=16) as s:  # doctest: +SKIP
    ...     for event in s:
    ...         if isinstance(event, collab.events.TokenDelta):
    ...             print(event.worker, event.text)
    >>> s.result.answer  # doctest: +SKIP
    """
    options.setdefault("progress", False)
    try:
        bound = inspect.signature(generate).bind(model, prompt, **options)
    except TypeError as exc:
        raise TypeError(f"collab.stream takes the options of collab.generate: {exc}") from None
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    refuse_unknown(arguments.pop("transformers_options"), arguments)
    return Stream(_prepare(**arguments))


class _Job:
    """A validated run and how to conclude it: what generate and stream share."""

    def __init__(self, run: Run, aggregate, scorer, answer: str, streams=()):
        self.run, self.aggregate, self.scorer, self.answer, self.streams = run, aggregate, scorer, answer, streams

    def conclude(self, result: Result) -> Result:
        _conclude(result, self.aggregate, self.scorer, self.answer)
        for s in self.streams:
            s.end()
        return result

    def execute(self) -> Result:
        with keeping_partial(self.run):
            return self.conclude(self.run.execute())


def _prepare(**options) -> "_Job":
    """Every option through the one validation layer (`collab.options`), then the run."""
    return _build(**normalize(options))


def _build(**options) -> _Job:
    """Resolve and check every option (before any compute), then build the run."""
    return _construct(_resolve(**options))


@dataclass(slots=True)
class _Resolved:
    """Everything a run is built from, checked."""

    model: Any
    tokenizer: Any
    preset: Any
    chosen: Any  # the protocol, or None
    limits: Limits
    options: RunOptions
    encoded: Any
    search_options: SearchOptions | None
    use_finisher: bool
    roots_spawn: tuple
    streams: list
    knobs: dict  # the sampling and run options the construction reads


def _resolve(
    *, model, prompt, tokenizer, workers, visibility, template, strategy, protocol, limits, finisher,
    finisher_tokens, scorer, search, answer, max_new_tokens, do_sample, temperature, top_p, top_k,
    repetition_penalty, stop_repeats, seed, ignore_eos, output_logits, logits_processor, callback, progress,
    page_size, attention, step_end, kv_cap, generation_config, eos_token_id, pad_token_id, streamer, input_ids,
    attention_mask,
) -> _Resolved:
    """Every check, in the order a user's mistake is cheapest to report: options first, then the
    model (loaded only when named by id), then the prompt against the model and the memory
    estimate. Takes `generate`'s options by keyword (an option added there and not here fails at once)."""
    check_model_argument(model, input_ids if input_ids is not None else prompt)
    prompt = prompt_from(prompt, input_ids, attention_mask)
    if generation_config is not None and not isinstance(generation_config, GenerationConfig):
        raise TypeError(f"generation_config={generation_config!r}: give a transformers GenerationConfig")
    if max_new_tokens is None:
        max_new_tokens = getattr(generation_config, "max_new_tokens", None) or DEFAULT_NEW_TOKENS
    streams = streamers(streamer)
    if streams:
        callback = _streaming(streams, callback)
    preset = resolve_strategy(strategy)
    chosen = resolve_protocol(protocol or preset.protocol) if (protocol or preset.protocol) else None
    roots_spawn = chosen.start(workers) if chosen is not None else ()  # refuses a path count its format cannot write
    if search is not None and not preset.search:
        raise ValueError("search= options apply to strategy='tree_of_thoughts' or strategy='mcts'")
    search_options = SearchOptions.of(search) if preset.search else None
    options = RunOptions(
        workers=1 if preset.single_root else workers,
        visibility=visibility or preset.visibility,
        # a search's nodes sample `step_tokens` each; its paths grow (and end at the context) step by step
        max_new_tokens=search_options.step_tokens if search_options else max_new_tokens,
        ignore_eos=ignore_eos, output_logits=output_logits, page_size=page_size, progress=progress,
        callback=callback, step_end=step_end, stop_repeats=stop_repeats,
    )
    checked_limits = _limits(chosen, limits)  # checked before any loading
    use_finisher = preset.finisher if finisher is None else bool(finisher)
    _check_combinations(preset, chosen, options, scorer, answer, logits_processor)
    cap = memory.parse_bytes(kv_cap)
    model, tokenizer = _loaded(model, tokenizer, chosen)
    trained = trained_protocol(model, protocol or preset.protocol)
    if trained is not None:  # the protocol as the model's adapter was taught it: its views, its nesting
        chosen, checked_limits = trained, _limits(trained, limits)
    model = uncompiled(model)
    _check_text(model, tokenizer, prompt, template, preset, chosen, options, use_finisher, strategy)
    encoded = encode(prompt, template, tokenizer, options.workers, system=preset.system, headers=preset.headers)
    if not encoded.prompt_ids:
        raise ValueError("the prompt tokenizes to no tokens: pass a non-empty prompt")
    check_model(model, options.longest_view(len(encoded.prompt_ids), [len(h) for h in encoded.headers]))
    tensor_parallel.check(model)
    if not tensor_parallel.reports(model):  # under tensor parallelism, rank 0 alone reports
        options.progress, options.callback, streams = False, None, []
    check_token_ids(encoded.prompt_ids, model)
    options.attention = resolve_backend(attention, model)
    need = _estimate(model, encoded, options, chosen, checked_limits, use_finisher, finisher_tokens, search_options)
    memory.check(need, cap, memory.available(model), _knobs(chosen, search_options))
    options.kv_cap_pages = None if cap is None else cap // (memory.bytes_per_token(model) * page_size)
    options.eos_ids = eos_from(eos_token_id, generation_config)
    knobs = dict(generation_config=generation_config, do_sample=do_sample, temperature=temperature, top_p=top_p,
                 top_k=top_k, repetition_penalty=repetition_penalty, finisher_tokens=finisher_tokens, scorer=scorer,
                 answer=answer, seed=seed, logits_processor=logits_processor, strategy=strategy)
    return _Resolved(model, tokenizer, preset, chosen, checked_limits, options, encoded, search_options, use_finisher,
                     roots_spawn, streams, knobs)


def _check_combinations(preset, chosen, options, scorer, answer, logits_processor) -> None:
    if preset.aggregate == "best" and not callable(scorer):
        raise ValueError("strategy='best_of_n' needs scorer=callable(text) -> float to pick the best worker")
    if chosen is not None and options.policy.history:
        raise ValueError(
            f"visibility {options.visibility!r} moves finished steps into a shared history, but protocol "
            f"{chosen.name!r} forks children from, and joins them after, a prefix of the parent's block: "
            "use 'full', 'none' or 'lag:K'"
        )
    if preset.search and options.policy.history:
        raise ValueError(f"visibility {options.visibility!r} moves steps into a shared history; search strategies fork steps: use 'none' or 'full'")
    answers.check_kind(answer)
    if logits_processor is not None and not all(callable(p) for p in logits_processor):
        raise TypeError("logits_processor must be a list of callables (transformers LogitsProcessor)")


def _loaded(model, tokenizer, chosen):
    """The model and tokenizer to run: a model named by id (or None, the embedded default) is loaded."""
    if model is None or isinstance(model, str):
        # the embedded default model, asked to spawn by the markers protocol, comes with the adapter
        # that taught it to (`collab.load(adapter="parallel")`)
        adapter = "parallel" if model is None and chosen is not None and chosen.name == "markers" and has_adapter("parallel") else None
        loaded, loaded_tokenizer = load(model, adapter=adapter)
        model, tokenizer = loaded, tokenizer or loaded_tokenizer
    return model, tokenizer


def _check_text(model, tokenizer, prompt, template, preset, chosen, options, use_finisher, strategy) -> None:
    check_tokenizer(tokenizer)
    check_prompt(prompt, template, tokenizer)
    if options.policy.history and tokenizer is None:
        raise ValueError(f"visibility {options.visibility!r} needs a tokenizer to find the ends of reasoning steps: pass tokenizer=...")
    if (chosen is not None or use_finisher) and tokenizer is None:
        raise ValueError("protocols and the finisher read and write text: pass tokenizer=...")
    if preset.search and tokenizer is None:
        raise ValueError(f"strategy={strategy!r} finds the ends of reasoning steps in text: pass tokenizer=...")


def _construct(r: _Resolved) -> _Job:
    """The run from checked settings: the sampling config, the controller, the search driver."""
    k, tokenizer, preset = r.knobs, r.tokenizer, r.preset
    sampled_by_preset = preset.sample and k["do_sample"] is None
    generation = resolve_config(
        k["generation_config"] or r.model,
        do_sample=True if sampled_by_preset else k["do_sample"],
        temperature=0.7 if sampled_by_preset and k["temperature"] is None else k["temperature"],
        top_p=k["top_p"], top_k=k["top_k"], repetition_penalty=k["repetition_penalty"],
    )
    adaptive = None
    if r.chosen is not None or r.use_finisher:
        adaptive = Adaptive(
            controller=Controller(r.chosen, r.limits, tokenizer.decode(r.encoded.prompt_ids)) if r.chosen is not None else None,
            encode=lambda text: tokenizer(text, add_special_tokens=False).input_ids,
            finisher=tokenizer(prompts.load("finisher.txt"), add_special_tokens=False).input_ids if r.use_finisher else None,
            finisher_tokens=k["finisher_tokens"],
            roots_spawn=r.roots_spawn,
        )
    driver = None
    if preset.search:
        value = k["scorer"] if k["scorer"] is not None else SelfJudge(tokenizer, prompts.load("judge.txt"))
        driver = lambda run: SearchRun(run, SEARCHES[preset.search](r.search_options), value)  # noqa: E731
    seed = draw_seed() if k["seed"] is None else k["seed"]
    group = tensor_parallel.Group.of(r.model)
    if group is not None:  # every rank samples with rank 0's seed
        seed = group.broadcast([seed])[0]
    run = Run(r.model, tokenizer, r.encoded, r.options, generation, k["logits_processor"], seed, adaptive, driver)
    run.result.strategy = k["strategy"]
    return _Job(run, preset.aggregate, k["scorer"], k["answer"], r.streams)


DEFAULT_NEW_TOKENS = 256


def _streaming(streams: list, callback):
    """A step callback that feeds root worker i's tokens to streams[i] (the prompt first, as
    transformers' streamers expect), then calls the user's callback."""
    import torch

    started = []

    def feed(update):
        if not started:
            started.append(True)
            prompt = torch.tensor([update.result.prompt_ids])
            for s in streams:
                s.put(prompt)
        for i, s in enumerate(streams):
            if i in update.tokens:
                s.put(torch.tensor([update.tokens[i]]))
        if callback is not None:
            callback(update)

    return feed


def _limits(protocol, asked) -> Limits:
    """`asked` (Limits, a dict of some fields, or None) over what the protocol's trained models do."""
    defaults = protocol.limits if protocol is not None else {}
    return Limits(**{**defaults, **asked}) if isinstance(asked, dict) else (asked or Limits(**defaults))


def _estimate(model, encoded, options, protocol, limits, finisher, finisher_tokens, search) -> memory.Estimate:
    headers = [len(h) for h in encoded.headers]
    spawned = limits.max_workers - len(headers) if protocol is not None else 0
    extra, what = 0, ""
    if search is not None:  # the tree's sampled tokens, plus judge prompts in flight
        extra, what = search.max_tokens + 64 * search.branching * search.beam, "search"
    elif finisher:
        extra, what = finisher_tokens + 64, "finisher"
    return memory.estimate(model, len(encoded.prompt_ids), headers, options.max_new_tokens,
                           spawned, options.max_new_tokens + 32, extra, what, options.page_size)


def _knobs(protocol, search) -> str:
    if search is not None:
        return "search.max_tokens or search.branching/beam"
    return "max_new_tokens, workers" + (" or limits.max_workers" if protocol is not None else "")


def _conclude(result: Result, aggregate: str | None, scorer, kind: str) -> None:
    """Fill result.answer: a vote, a scorer's pick, the finisher's answer, or the root's."""
    roots = [w for w in result.workers if w.parent is None and w.role == "worker"]
    if aggregate == "vote":
        result.answers = [answers.extract(w.text, kind) for w in roots]
        result.answer = answers.majority(result.answers)
    elif aggregate == "best":
        result.scores = [answers.score(scorer, w.text or "") for w in roots]
        best = roots[max(range(len(roots)), key=lambda i: result.scores[i])]
        result.answer = answers.extract(best.text, kind) or (best.text or "").strip()
    elif result.search is not None and result.search.chosen:
        text = result.search.text(result.search.chosen[-1])
        result.answer = answers.extract(text, kind) or text.strip()
    elif result.finisher is not None:
        text = result.finisher.text or ""
        result.answer = answers.extract(text, kind) or text.strip()
    elif len(roots) == 1:
        result.answer = answers.extract(roots[0].text, kind)
