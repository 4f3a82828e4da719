"""One test per row of the README's table of limits and bad input: the case named in the row
must give the outcome, with a message that contains the row's text."""

import re
import sys
from pathlib import Path

import pytest
import torch
from scripted import CharTokenizer, Script
from transformers import GPT2Config, GPT2LMHeadModel

import collab
from collab import memory
from conftest import tiny_model

README = Path(__file__).parents[1] / "docs" / "reliability.md"  # the table of limits lives in the docs
P = list(range(3, 30))


def table() -> dict[str, str]:
    """{case: message fragment} from the README table."""
    section = README.read_text().split("## Every limit and bad input", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|.*\| `([^`]+)` \|$", section, flags=re.M)
    return dict(rows)


def raised(exc_type, fn):
    with pytest.raises(exc_type) as info:
        fn()
    return str(info.value) + "".join(getattr(info.value, "__notes__", []))


def gen(**kw):
    kw = {"template": None, "max_new_tokens": 4, **kw}
    return lambda: collab.generate(kw.pop("model", None) or tiny_model(), kw.pop("prompt", P), **kw)


def events(result, kind=None):
    return " ".join(f"{e.kind} {e.info}" for e in result.events if kind is None or e.kind == kind)


def interrupt():
    def stop(update):
        if update.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(collab.Interrupted) as info:
        gen(callback=stop, workers=2)()
    assert info.value.result.workers[0].token_ids
    return info.value.result.workers[0].finish_reason


def callback_raises():
    def bad(update):
        raise RuntimeError("from the callback")

    message = raised(RuntimeError, gen(callback=bad))
    return message


def stream_closed():
    s = collab.stream(tiny_model(), P, template=None, workers=2, max_new_tokens=20)
    next(s), next(s)
    result = s.close()
    assert not result.complete
    return events(result)


def kv_cap_reached():
    model = tiny_model()
    cap = memory.bytes_per_token(model) * (len(P) + 30)
    result = gen(model=model, workers=3, max_new_tokens=40, ignore_eos=True, kv_cap=cap, page_size=4)()
    assert result.stats.kv_tokens <= len(P) + 30 and result.complete
    assert result.stats.kv_reserved_bytes <= cap  # the arena itself stays under the cap
    return events(result, "kv_cap") + " " + " ".join(w.finish_reason for w in result.workers)


def kv_budget(monkeypatch):
    monkeypatch.setattr(memory, "available", lambda model: 100_000)  # 100 kB free
    return raised(memory.MemoryBudgetError, gen(model=tiny_model(max_position_embeddings=4096), workers=4, max_new_tokens=200))


def kv_pages(monkeypatch):
    """Tokens alone fit the free memory; rounded up to 1024-token pages for each block, they do not."""
    model = tiny_model(max_position_embeddings=4096)
    tokens = len(P) + 2 * 20  # the prompt and two workers' budgets
    monkeypatch.setattr(memory, "available", lambda model: 4 * tokens * memory.bytes_per_token(model))
    gen(model=model, workers=2, max_new_tokens=20, page_size=4)()  # small pages: it runs
    return raised(memory.MemoryBudgetError, gen(model=model, workers=2, max_new_tokens=20, page_size=1024))


def stream_callback():
    def boom(update):
        raise RuntimeError("callback fell over")

    s = collab.stream(tiny_model(), P, template=None, workers=2, max_new_tokens=8, callback=boom)
    with pytest.raises(RuntimeError) as info:
        list(s)
    assert info.value.result.workers[0].token_ids  # what was sampled before the callback stays
    return str(info.value)


def compiled():
    import torch

    model = tiny_model()
    plain = gen(model=model, workers=2, max_new_tokens=6, seed=0)()
    again = collab.generate(torch.compile(model), P, template=None, workers=2, max_new_tokens=6, seed=0)
    same = [w.token_ids for w in again.workers] == [w.token_ids for w in plain.workers]
    assert model.config._attn_implementation != "collab"  # restored
    return "same tokens" if same else "different tokens"


def context_mid_run():
    """A search path grows step by step past a 48-token context: the branch ends, no error."""
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=48)
    result = collab.generate(model, "Q: go\n", tokenizer=CharTokenizer(), template=None, strategy="tree_of_thoughts",
                             seed=0, scorer=len, search={"branching": 1, "beam": 1, "max_depth": 9, "step_tokens": 8,
                                                         "max_tokens": 200}, ignore_eos=True)
    assert result.complete
    return " ".join(w.finish_reason for w in result.workers)


def max_total_tokens():
    from test_protocols import PROMPT as TEXT

    model = tiny_model(vocab_size=128, eos_token_id=3)
    result = collab.generate(model, TEXT, tokenizer=CharTokenizer(), template=None, strategy="adaptive", finisher=False,
                             limits={"max_total_tokens": 10}, max_new_tokens=50, ignore_eos=True)
    assert result.stats.generated_tokens <= 11
    return result.workers[0].finish_reason


def spawn_limit():
    model = tiny_model(vocab_size=128, eos_token_id=3)
    text = "Q: split\n"
    root = "<spawn>a</spawn><spawn>b</spawn><spawn>c</spawn>"
    result = collab.generate(model, text, tokenizer=CharTokenizer(), template=None, strategy="adaptive", finisher=False,
                             limits={"max_workers": 2}, max_new_tokens=60,
                             logits_processor=[Script(len(text), [root + "<wait>done", "x"])])
    return events(result, "refused")


def space(case):
    sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "space"))
    import app

    args = {"prompt": "hi", "strategy": "hogwild", "workers": 2, "visibility": "full", "max_new_tokens": 8, "temperature": 0.7}
    if case == "space-empty":
        args["prompt"] = "  "
    elif case == "space-long":
        args["prompt"] = "x" * (app.MAX_PROMPT_CHARS + 1)
    elif case == "space-nan":  # every numeric field, NaN and both infinities: the page's own message each time
        bad = [{k: v} for k in ("workers", "max_new_tokens", "temperature") for v in (float("nan"), float("inf"), -float("inf"))]
        messages = [raised(app.gr.Error, lambda b=b: app.check_inputs(**{**args, **b})) for b in bad]
        assert all(m for m in messages)
        return " | ".join(messages)
    else:
        args["workers"] = app.MAX_WORKERS + 1
    return raised(Exception, lambda: app.check_inputs(**args))


def tensor_parallel(case):
    """`collab.load(..., tp_plan="auto")` refused before any loading, as in a process torchrun
    started (WORLD_SIZE=2); a model transformers sharded unevenly refused by `generate`."""
    import os
    import tempfile
    from unittest import mock

    with tempfile.TemporaryDirectory(prefix="collab-tp-") as folder, mock.patch.dict(os.environ, {"WORLD_SIZE": "2"}):
        if case == "tp-no-plan":
            GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, bos_token_id=0, eos_token_id=0).save_pretrained(folder)
        else:
            tiny_model(num_key_value_heads=1).config.save_pretrained(folder)
        load = {"tp-device-map": dict(device_map="auto"), "tp-adapter": dict(adapter="parallel")}.get(case, {})
        if case == "tp-launcher":
            del os.environ["WORLD_SIZE"]  # put back on leaving the block
        message = raised((ValueError, TypeError), lambda: collab.load(folder, tp_plan="auto", **load))
        if case == "tp-heads":
            sharded = tiny_model(num_key_value_heads=1)
            sharded._tp_size = 2  # as transformers marks a model it sharded over 2 processes
            message += " " + raised(collab.UnsupportedModelError, gen(model=sharded))
        return message


def bench(argv):
    """The CLI prints the error and exits with status 2, before loading a benchmark's inputs."""
    import contextlib
    import io

    from collab.__main__ import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["bench", *argv]) == 2
    return err.getvalue()


CASES = {
    "workers-range": lambda: raised(ValueError, gen(workers=0)) + raised(ValueError, gen(workers=65)),
    "workers-type": lambda: raised(TypeError, gen(workers=2.5)),
    "max-new-tokens": lambda: raised(ValueError, gen(max_new_tokens=0)),
    "empty-prompt": lambda: raised(ValueError, gen(prompt="   ")) + raised(ValueError, gen(prompt=[])),
    "prompt-type": lambda: raised(TypeError, gen(prompt=3.5)),
    "no-tokenizer": lambda: raised(ValueError, gen(prompt="hello")),
    "messages-raw": lambda: raised(ValueError, gen(prompt=[{"role": "user", "content": "hi"}])),
    "template": lambda: raised(ValueError, gen(template="chat")),
    "visibility": lambda: raised(ValueError, gen(visibility="ful")),
    "lag": lambda: raised(ValueError, gen(visibility="lag:x")),
    "matrix": lambda: raised(ValueError, gen(workers=3, visibility=[[True, True], [True, True]])),
    "strategy": lambda: raised(ValueError, gen(strategy="beam")),
    "protocol": lambda: raised(ValueError, gen(protocol="xml")),
    "sampling": lambda: raised(ValueError, gen(do_sample=True, temperature=0)),
    "top-p": lambda: raised(ValueError, gen(do_sample=True, top_p=1.5)),
    "answer": lambda: raised(ValueError, gen(answer="latex")),
    "finisher-tokens": lambda: raised(ValueError, gen(finisher_tokens=0)),
    "attention": lambda: raised(ValueError, gen(attention="fast")),
    "flash-missing": lambda: raised(ValueError, gen(attention="flash")),
    "callback": lambda: raised(TypeError, gen(callback=3)),
    "processor": lambda: raised(TypeError, gen(logits_processor=[3])),
    "step-end": lambda: raised(TypeError, gen(step_end="\n\n")),
    "stop-repeats": lambda: raised(ValueError, gen(stop_repeats=1)),
    "unknown-option": lambda: raised(TypeError, lambda: collab.stream(tiny_model(), P, wrkers=2)),
    "limits": lambda: raised(ValueError, gen(limits={"max_concurrent": 0})),
    "best-of-n": lambda: raised(ValueError, gen(strategy="best_of_n")),
    "scorer-type": lambda: raised(TypeError, gen(scorer=3)),
    "search-options": lambda: raised(ValueError, gen(strategy="mcts", tokenizer=CharTokenizer(), search={"branching": 0})),
    "search-budget": lambda: raised(ValueError, gen(strategy="mcts", tokenizer=CharTokenizer(), search={"max_tokens": 0})),
    "search-misuse": lambda: raised(ValueError, gen(search={"beam": 2})),
    "search-visibility": lambda: raised(ValueError, gen(strategy="mcts", tokenizer=CharTokenizer(), visibility="step")),
    "fork-step": lambda: raised(ValueError, gen(strategy="adaptive", tokenizer=CharTokenizer(), visibility="step")),
    "paths-cap": lambda: raised(ValueError, gen(strategy="parathinker", tokenizer=CharTokenizer(), workers=9)),
    "protocol-mode": lambda: raised(ValueError, lambda: collab.protocols.ThreadWeaver(join="eval")),
    "async-join": lambda: events(collab.generate(
        tiny_model(vocab_size=128, eos_token_id=3), "Q\n", tokenizer=CharTokenizer(), template=None, strategy="asyncthink",
        seed=0, max_new_tokens=12, logits_processor=[Script(2, ["<JOIN3> ok"])]), "malformed"),
    "scorer-fails": lambda: events(collab.generate(
        tiny_model(vocab_size=128, eos_token_id=3), "Q\n", tokenizer=CharTokenizer(), template=None, strategy="mcts",
        seed=0, scorer=lambda t: 1 / 0, search={"branching": 2, "max_depth": 1, "step_tokens": 4}), "unscored"),
    "kv-cap-value": lambda: raised(ValueError, gen(kv_cap="lots")),
    "kv-cap-prompt": lambda: raised(memory.MemoryBudgetError, gen(kv_cap=1000)),
    "kv-budget": kv_budget,
    "kv-pages": kv_pages,
    "page-size": lambda: raised(ValueError, gen(page_size=5000)) + raised(ValueError, gen(page_size=0)) + raised(TypeError, gen(page_size=True)),
    "stream-callback": stream_callback,
    "kv-cap-reached": kv_cap_reached,
    "context-refused": lambda: raised(ValueError, gen(model=tiny_model(max_position_embeddings=32), max_new_tokens=20)),
    "context-mid-run": context_mid_run,
    "max-total-tokens": max_total_tokens,
    "spawn-limit": spawn_limit,
    "model-family": lambda: raised(collab.UnsupportedModelError, gen(model=GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)))),
    "processor-output": lambda: raised(ValueError, gen(logits_processor=[lambda ids, s: s - float("inf")])),
    "option-types": lambda: " ".join(raised((TypeError, ValueError), gen(**{k: v})) for k, v in [
        ("temperature", "0.7"), ("seed", 2.5), ("top_p", float("nan")), ("do_sample", "false"), ("finisher", "no"),
        ("limits", "none"), ("max_new_tokens", float("inf"))]),
    "hf-option": lambda: " ".join(raised(TypeError, gen(**{k: v})) for k, v in [
        ("max_length", 20), ("num_return_sequences", 2), ("return_dict_in_generate", True), ("num_beams", 2)]),
    "hf-padding": lambda: raised(ValueError, gen(attention_mask=[0] + [1] * (len(P) - 1))),
    "hf-batch": lambda: raised(ValueError, gen(prompt=torch.tensor([P, P]))),
    "model-prompt": lambda: raised(TypeError, lambda: collab.generate("What is 2+3?")),
    "no-lm-head": lambda: raised(collab.UnsupportedModelError, gen(model=tiny_model().model)),
    "compiled": compiled,
    "tokenizer-name": lambda: raised(TypeError, gen(tokenizer="gpt2")),
    "tokenizer-type": lambda: raised(TypeError, gen(tokenizer=object())),
    "token-ids": lambda: raised(ValueError, gen(prompt=[3, 4, 96])) + raised(ValueError, gen(prompt=[-1, 4])),
    "rope-type": lambda: raised(collab.UnsupportedModelError, gen(model=tiny_model(rope_parameters={"rope_type": "dynamic", "rope_theta": 1e4, "factor": 2.0}))),
    "sliding-window": lambda: raised(collab.UnsupportedModelError, gen(model=tiny_model("mistral", sliding_window=16), workers=2, max_new_tokens=20)),
    "model-path": lambda: raised(ValueError, lambda: collab.load("/no/such/dir")),
    "tp-device-map": lambda: tensor_parallel("tp-device-map"),
    "tp-adapter": lambda: tensor_parallel("tp-adapter"),
    "tp-launcher": lambda: tensor_parallel("tp-launcher"),
    "tp-no-plan": lambda: tensor_parallel("tp-no-plan"),
    "tp-heads": lambda: tensor_parallel("tp-heads"),
    "interrupt": interrupt,
    "callback-raises": callback_raises,
    "stream-closed": stream_closed,
    "bench-workers": lambda: bench(["--workers", "0"]),
    "bench-context": lambda: bench(["--context", "100000", "--workers", "1"]),
    "space-empty": lambda: space("space-empty"),
    "space-long": lambda: space("space-long"),
    "space-workers": lambda: space("space-workers"),
    "space-nan": lambda: space("space-nan"),
}


def test_every_row_has_a_case_and_every_case_a_row():
    assert set(table()) == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_row(case, monkeypatch):
    run = CASES[case]
    message = run(monkeypatch) if case in ("kv-budget", "kv-pages") else run()
    expected = table()[case]
    assert expected in message, (case, message)


def test_a_kv_cap_under_the_free_memory_lets_a_large_budget_run(monkeypatch):
    """The budgets allow more KV than is free, but kv_cap bounds the run: it runs, within the cap."""
    model = tiny_model(max_position_embeddings=4096)
    monkeypatch.setattr(memory, "available", lambda model: 100_000)
    cap = 30_000
    result = collab.generate(model, P, template=None, workers=4, max_new_tokens=200, kv_cap=cap, ignore_eos=True,
                             page_size=4)
    assert result.complete and result.stats.kv_bytes <= cap
    assert result.stats.kv_reserved_bytes <= cap  # not reserved for the budgets: bounded by the cap
    assert {w.finish_reason for w in result.workers} == {"kv_cap"}
    with pytest.raises(memory.MemoryBudgetError, match="more than the"):  # a cap over the free memory
        collab.generate(model, P, template=None, workers=4, max_new_tokens=200, kv_cap=200_000)
