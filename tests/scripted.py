"""Scripted runs: a character tokenizer and a logits processor that forces scripted text."""

from types import SimpleNamespace

import torch

EOS = 3


class CharTokenizer:
    """One token per ASCII character; id 3 is EOS. Exact: encode(a + b) == encode(a) + encode(b)."""

    eos_token_id = EOS

    def __call__(self, text, add_special_tokens=False):
        return SimpleNamespace(input_ids=[ord(c) for c in text])

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "[user] " + messages[-1]["content"] + "\n[assistant]"

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids if not (skip_special_tokens and i == EOS))


class Script:
    """Forces each worker to write the script whose text its own stream (prompt excluded) is a
    prefix of; EOS at a script's end or off-script. `calls` counts the forced tokens."""

    def __init__(self, prompt_len: int, scripts: list[str]):
        self.prompt_len, self.scripts, self.calls = prompt_len, scripts, 0

    def __call__(self, input_ids, scores):
        self.calls += 1
        own = "".join(chr(i) for i in input_ids[0, self.prompt_len :].tolist())
        target = EOS
        for script in self.scripts:
            if script.startswith(own) and len(script) > len(own):
                target = ord(script[len(own)])
                break
        forced = torch.full_like(scores, float("-inf"))
        forced[:, target] = 0.0
        return forced


class Recorder:
    """A streamer (transformers' put/end protocol) that records what it is given."""

    def __init__(self):
        self.calls, self.ended = [], False

    def put(self, value):
        self.calls.append(value.tolist())

    def end(self):
        self.ended = True
