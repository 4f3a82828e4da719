"""The recipe on a tiny random model (seconds): LoRA SFT through the transformers Trainer on
rendered traces, loss on sampled tokens only, checkpoints and resume, the config saved, the
caller's model left as it was; adapters load merged, and foreign ones are refused."""

import json

from dataclasses import asdict

import pytest
import torch
from test_train_views import Chars

import collab
from collab.train import DataConfig, TrainConfig, build, collate, train
from collab.train.views import IGNORE
from conftest import tiny_model

pytest.importorskip("peft")


class ChatChars(Chars):
    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"[{m['role']}] {m['content']}\n" for m in messages) + "[assistant]"


def small(**kw):
    return DataConfig(tasks={"compound": 2, "simple": 1}, max_tokens=4096, **kw)


def test_rows_train_only_what_workers_write():
    data = build(small(), ChatChars())
    assert len(data) >= 4 and set(data["task"]) == {"compound", "simple"}
    for row in data:
        labelled = [t for t, label in zip(row["input_ids"], row["labels"]) if label != IGNORE]
        assert labelled and all(label in (t, IGNORE) for t, label in zip(row["input_ids"], row["labels"]))
        text = "".join(chr(t) for t in labelled)
        assert "Helper task:" not in text  # a helper's head is fed by collab, never trained
    batch = collate([data[0], data[1]])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()


def test_a_few_steps_save_an_adapter_resume_and_leave_the_model_as_it_was(tmp_path):
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=4096)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    config = TrainConfig(data=small(), steps=4, batch=2, save_steps=2, rank=4)
    out = train(model, ChatChars(), config, tmp_path)
    assert out.global_step == 4 and (tmp_path / "adapter" / "adapter_config.json").is_file()
    saved = json.loads((tmp_path / "collab_train.json").read_text())
    assert saved["train"]["steps"] == 4 and saved["examples"] > 0 and (tmp_path / "rows.jsonl").is_file()
    assert {n: p for n, p in model.state_dict().items()}.keys() == before.keys()
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())  # no LoRA left, weights unchanged
    # resume: a longer run picks up from the last checkpoint instead of starting over
    again = train(model, ChatChars(), TrainConfig(data=small(), steps=6, batch=2, save_steps=2, rank=4), tmp_path)
    assert again.global_step == 6
    merged = collab.models.with_adapter(model, tmp_path / "adapter")
    assert merged.collab_views == {"protocol": "markers", "siblings": False, "max_depth": 1}  # helpers were trained blind
    assert not hasattr(model, "collab_views")
    assert any(not torch.equal(before[n], p) for n, p in merged.state_dict().items())  # the adapter changed a copy
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())


def test_a_foreign_or_corrupt_adapter_is_refused(tmp_path):
    model = tiny_model(vocab_size=128, eos_token_id=3)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be applied to this model"):
        collab.models.with_adapter(model, tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "adapter_config.json").write_text("{}")
    (tmp_path / "b" / "collab_base.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 576,
                                                                  "num_hidden_layers": 30, "vocab_size": 49152,
                                                                  "name": "SmolLM2-135M-Instruct"}))
    with pytest.raises(ValueError, match="was trained for SmolLM2-135M-Instruct, not for this model"):
        collab.models.with_adapter(model, tmp_path / "b")
    with pytest.raises(ValueError, match="neither a shipped adapter"):
        collab.load(adapter=tmp_path / "missing")


@pytest.mark.parametrize("bad, match", [
    (dict(tasks={"sudoku": 3}), "unknown task 'sudoku'; valid tasks are"),
    (dict(protocol="xml"), "unknown protocol 'xml'; valid protocols are"),
    (dict(traces="both"), "choose 'parallel' or 'sequential'"),
    (dict(heads="short"), "heads='short': choose 'task'"),
    (dict(heads="index", tasks={"compound": 5, "countdown4": 5}), "heads='index' with task 'countdown4'"),
    (dict(heads={"countdown3": "index"}, tasks={"countdown3": 5}), "heads='index' with task 'countdown3'"),
    (dict(heads={"compound": "part"}, tasks={"compound": 5}), "heads='part': choose 'task'"),
    (dict(heads={"simple": "index"}, tasks={"compound": 5}), "heads names task 'simple', which is not in tasks"),
    (dict(fanout=True, protocol="multiverse"), "fanout=True with protocol 'multiverse'"),
    (dict(fanout="yes"), "give fanout=False"),
    (dict(fanout=("compound", "simple"), tasks={"compound": 5}), "fanout names task 'simple', which is not in tasks"),
    (dict(fanout=("compound",), protocol="threadweaver"), r"fanout=\('compound',\) with protocol 'threadweaver'"),
    (dict(spawn_first="compound"), "spawn_first='compound': give a tuple of task names"),
    (dict(spawn_first=("countdown4",), tasks={"compound": 5}), "spawn_first names task 'countdown4', which is not in tasks"),
])
def test_bad_training_options_are_refused_before_any_compute(bad, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**bad)


def test_heads_chosen_per_task_name_helpers_by_number_only_there():
    config = DataConfig(tasks={"compound": 2, "countdown3": 2}, heads={"compound": "index"}, max_tokens=4096)
    assert (config.head("compound"), config.head("countdown3")) == ("index", "task")
    data = build(config, ChatChars())
    spawned = {task: "".join(chr(t) for row in data if row["task"] == task and row["worker"] == 0 for t in row["input_ids"])
               for task in ("compound", "countdown3")}
    assert "<spawn>part 1</spawn>" in spawned["compound"]
    assert "<spawn>" in spawned["countdown3"] and "<spawn>part " not in spawned["countdown3"]
    everywhere = build(DataConfig(tasks={"compound": 2}, heads="index", max_tokens=4096), ChatChars())
    assert everywhere["input_ids"] == build(DataConfig(tasks={"compound": 2}, heads={"compound": "index"}, max_tokens=4096),
                                            ChatChars())["input_ids"]


def test_fanout_spawns_a_fork_with_one_tag_and_keeps_every_helper():
    config = DataConfig(tasks={"compound": 2, "countdown3": 2}, heads={"compound": "index"}, max_tokens=4096, fanout=True)
    data, lines = build(config, ChatChars()), build(DataConfig(**{**asdict(config), "fanout": False}), ChatChars())
    roots = {task: "".join(chr(t) for row in data if row["task"] == task and row["worker"] == 0 for t in row["input_ids"])
             for task in ("compound", "countdown3")}
    assert "<spawn>part 1\npart 2\n" in roots["compound"] and "</spawn><spawn>" not in roots["compound"]
    assert "<spawn>Node #0,0: " in roots["countdown3"] and "\nNode #0,1: " in roots["countdown3"]
    assert sorted(set(zip(data["key"], data["worker"]))) == sorted(set(zip(lines["key"], lines["worker"])))
    assert sum(map(len, data["input_ids"])) < sum(map(len, lines["input_ids"]))


def test_fanout_and_spawn_first_chosen_per_task_change_only_those_tasks():
    chosen = DataConfig(tasks={"compound": 2, "countdown3": 2, "simple": 2}, max_tokens=4096, fanout=["compound"],
                        spawn_first=["compound"])
    assert chosen.fanout == ("compound",) and (chosen.fans("compound"), chosen.fans("countdown3")) == (True, False)
    plain = DataConfig(**{**asdict(chosen), "fanout": False, "spawn_first": ()})
    data, lines = build(chosen, ChatChars()), build(plain, ChatChars())

    def roots(rows, task):
        return ["".join(map(chr, r["input_ids"])) for r in rows if r["task"] == task and r["worker"] == 0]

    question_end = "[assistant]"
    for root in roots(data, "compound"):  # the root's first written token opens the one tag; no plan line before it
        written = root[root.index(question_end) + len(question_end):]
        assert written.startswith("<spawn>") and written.count("<spawn>") == 1
    for root in roots(lines, "compound"):
        written = root[root.index(question_end) + len(question_end):]
        assert not written.startswith("<spawn>") and written.count("<spawn>") >= 2
    for task in ("countdown3", "simple"):  # the other tasks' rows are the plain config's, token for token
        assert [r for r in data if r["task"] == task] == [r for r in lines if r["task"] == task]
    assert sorted(set(zip(data["key"], data["worker"]))) == sorted(set(zip(lines["key"], lines["worker"])))


def test_the_cli_reads_heads_per_task():
    from collab.__main__ import _heads

    assert _heads("index") == "index"
    assert _heads("compound=index, simple=index") == {"compound": "index", "simple": "index"}
    with pytest.raises(ValueError, match="--heads item 'compound': write task=kind"):
        _heads("compound,simple=index")


def test_the_cli_reads_task_lists():
    from collab.__main__ import _names

    assert (_names(None), _names("all"), _names("compound"), _names("compound, countdown3")) == \
        (False, True, ("compound",), ("compound", "countdown3"))


def test_epochs_set_the_steps(tmp_path):
    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=4096)
    out = train(model, ChatChars(), TrainConfig(data=small(), epochs=0.5, batch=4, save_steps=50, rank=4), tmp_path)
    saved = json.loads((tmp_path / "collab_train.json").read_text())
    assert out.global_step == saved["steps"] == -(-saved["examples"] // 8)  # ceil(0.5 * examples / 4)


@pytest.mark.parametrize("bad, match", [(dict(epochs=0), "epochs=0"), (dict(epochs=True), "epochs=True"),
                                        (dict(steps=0), "steps=0"), (dict(lr=-1.0), "lr=-1.0")])
def test_bad_run_options_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


def test_a_trace_file_trains_your_own_traces(tmp_path):
    from collab.tasks import make
    from collab.tasks.trace import from_json, to_json

    p = make("compound", 1, seed=5)[0]
    assert from_json(to_json(p.parallel)) == p.parallel and from_json(to_json(p.sequential)) == p.sequential
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps({"question": p.question, "trace": to_json(p.parallel), "answer": p.answer}) + "\n\n"
                    + json.dumps({"question": "What is 1+1?", "trace": "1+1 = 2\n\\\\boxed{2}"}) + "\n")
    mine = build(DataConfig(tasks={}, file=str(path), max_tokens=4096), ChatChars())
    assert set(mine["task"]) == {"file"} and len(mine) == 1 + len(p.parallel.forks[0].tasks) + 1 + 1
    seq = build(DataConfig(tasks={}, file=str(path), traces="sequential", max_tokens=4096), ChatChars())
    assert len(seq) == 2  # without a "sequential" trace, the forks' work in turn stands in for it


@pytest.mark.parametrize("line, match", [
    ("{broken", "line 2: Expecting"),
    ('{"question": "q"}', "line 2: missing \\['trace'\\]"),
    ('{"question": "q", "trace": "t", "gold": 1}', "line 2: unknown field\\(s\\) \\['gold'\\]"),
    ('{"question": "q", "trace": [{"tasks": ["a"], "children": [], "conclusion": "c"}]}', "line 2: Fork has 1 tasks"),
    ('{"question": "q", "trace": []}', "line 2: a trace is a text or a non-empty list"),
    ('["q"]', "line 2: expected a JSON object"),
])
def test_a_malformed_trace_file_names_the_line(tmp_path, line, match):
    path = tmp_path / "t.jsonl"
    path.write_text('{"question": "q", "trace": "fine"}\n' + line + "\n")
    with pytest.raises(ValueError, match=match):
        DataConfig(file=str(path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DataConfig(file=str(tmp_path / "missing.jsonl"))


def test_training_can_start_from_an_adapter(tmp_path):
    """`init`: more passes start from an adapter's weights (at a vanishing rate they stay them);
    its rank must match, refused before any compute."""
    from safetensors.torch import load_file

    model = tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=4096)
    train(model, ChatChars(), TrainConfig(data=small(), steps=2, batch=2, save_steps=50, rank=4, lr=1e-2), tmp_path / "a")
    first = tmp_path / "a" / "adapter"
    more = TrainConfig(data=small(), steps=2, batch=2, save_steps=50, rank=4, lr=1e-12, init=str(first))
    train(model, ChatChars(), more, tmp_path / "b")
    a, b = (load_file(p / "adapter" / "adapter_model.safetensors") for p in (tmp_path / "a", tmp_path / "b"))
    assert a.keys() == b.keys() and any(k.endswith("lora_B.weight") and a[k].abs().sum() > 0 for k in a)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # started from a's weights, not a fresh LoRA
    saved = json.loads((tmp_path / "b" / "collab_train.json").read_text())
    assert saved["init"] == f"adapter@{collab.models.adapter_digest(first)}"
    with pytest.raises(ValueError, match="has rank 4: pass --rank 4"):
        train(model, ChatChars(), TrainConfig(data=small(), steps=2, rank=8, init=str(first)), tmp_path / "c")
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="neither a shipped adapter"):
        train(model, ChatChars(), TrainConfig(data=small(), steps=2, rank=4, init=str(tmp_path / "none")), tmp_path / "d")
