"""Turning a user prompt into token ids: the prompt block and each worker's header.

`template=None` is raw mode: the prompt (token ids, or a string tokenized without special
tokens) is the prompt block as is, and workers have no headers. `template="default"` applies the
tokenizer's chat template with the collaboration system prompt from `prompts/collaborate.md`, and
each worker's block starts with its own header (`prompts/worker_header.txt`), so workers differ
from their first token.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import prompts

TEMPLATES = (None, "default")
NAMES = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi")


def worker_names(count: int) -> list[str]:
    return [NAMES[i] if i < len(NAMES) else f"Worker{i + 1}" for i in range(count)]


@dataclass(slots=True)
class Encoded:
    prompt_ids: list[int]
    headers: list[list[int]]  # one per worker; empty lists in raw mode
    names: list[str]


def check_tokenizer(tokenizer) -> None:
    """A tokenizer object that encodes and decodes (checked before any compute: text is decoded
    after every step)."""
    if tokenizer is None:
        return
    if isinstance(tokenizer, (str, bytes)) or hasattr(tokenizer, "__fspath__"):
        raise TypeError(f"tokenizer={tokenizer!r} is a name, not a tokenizer: pass "
                        "AutoTokenizer.from_pretrained(...), or load both with collab.load(...)")
    if not callable(tokenizer) or not callable(getattr(tokenizer, "decode", None)):
        raise TypeError(f"tokenizer {type(tokenizer).__name__} cannot encode and decode text: pass a transformers "
                        "tokenizer (callable, with .decode)")


def check_token_ids(ids: list[int], model) -> None:
    """Every prompt token is a row of the model's embedding table."""
    vocab = model.get_input_embeddings().num_embeddings
    bad = next((t for t in ids if not 0 <= t < vocab), None)
    if bad is not None:
        raise ValueError(f"token id {bad} in the prompt is outside the model's vocabulary (0..{vocab - 1}): "
                         "check the tokenizer matches the model")


def check_prompt(prompt, template, tokenizer) -> None:
    """Validate the prompt's form before any compute."""
    if template not in TEMPLATES:
        valid = ", ".join(repr(t) for t in TEMPLATES)
        raise ValueError(f"unknown template {template!r}; valid templates are {valid} (None is raw mode)")
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("the prompt is empty: pass a question, chat messages or token ids")
    elif isinstance(prompt, (list, tuple)):
        if len(prompt) == 0:
            raise ValueError("the prompt is empty: pass a question, chat messages or token ids")
        if all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            if template is not None and tokenizer is None:
                raise ValueError("template='default' needs a tokenizer: pass tokenizer=... or template=None")
            return
        if not all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt):
            raise TypeError(
                "a list prompt must be token ids (ints) or chat messages ({'role': ..., 'content': ...})"
            )
        if template is None:
            raise ValueError("chat messages need a chat template: pass template='default', or a string in raw mode")
    else:
        raise TypeError(f"prompt must be a string, chat messages or token ids, got {type(prompt).__name__}")
    if tokenizer is None:
        raise ValueError(
            "a text prompt needs a tokenizer: pass tokenizer=..., load the model by id or path, "
            "or give the prompt as token ids with template=None"
        )


def encode(prompt, template, tokenizer, workers: int, system: str | None = "collaborate.md", headers: bool = True) -> Encoded:
    """`system`: the prompts/ file of the system prompt (None: the chat template's own);
    `headers`: start each worker's block with its name."""
    names = worker_names(workers)
    if template is None:
        ids = list(prompt) if not isinstance(prompt, str) else tokenizer(prompt, add_special_tokens=False).input_ids
        return Encoded(ids, [[] for _ in names], names)
    if isinstance(prompt, (list, tuple)) and prompt and isinstance(prompt[0], int):
        ids = list(prompt)
    else:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if system is not None:
            text = prompts.load(system).format(count=workers, names=", ".join(names))
            if messages[0]["role"] == "system":
                text = text + "\n\n" + messages[0]["content"]
                messages = messages[1:]
            messages = [{"role": "system", "content": text}, *messages]
        chat = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(chat, add_special_tokens=False).input_ids
    if not headers:
        return Encoded(ids, [[] for _ in names], names)
    header = prompts.load("worker_header.txt")
    return Encoded(ids, [tokenizer(header.format(name=n), add_special_tokens=False).input_ids for n in names], names)
