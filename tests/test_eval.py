"""The evaluation harness end to end on a stand-in model whose workers are forced to write the
solvers' traces (parallel for one model, sequential for the other), so every column has a known
value: answers right, helpers spawned only where the trace forks, a shorter critical path for
the parallel trace, duplicated work measured, rows resumed, summary and plots written."""

import csv
import json

import pytest
from test_train_views import Chars

import collab
from collab import evaluation
from collab.tasks import render
from collab.train.data import prompt_ids
from collab.train.standin import standin_model
from collab.train.views import Force
from scripted import EOS


class ChatChars(Chars):
    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"[{m['role']}] {m['content']}\n" for m in messages) + "[assistant]"


def forced_models():
    tok = ChatChars()
    par, seq = standin_model(128, EOS), standin_model(128, EOS, context=1 << 15)  # two objects: two traces
    return {"par": (par, tok), "seq": (seq, tok)}, {id(par): "parallel", id(seq): "sequential"}


def forcing(tasks, kinds):
    by_question = {t.question: t for t in tasks}

    def generate(model, question, tokenizer, **kw):
        trace = getattr(by_question[question].problem, kinds[id(model)])
        force = Force(tokenizer, len(prompt_ids(question, tokenizer, "markers")),
                      [w.text for w in render(trace, "markers").workers], EOS)
        return collab.generate(model, question, tokenizer=tokenizer, logits_processor=[force], **kw)

    return generate


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    tasks = evaluation.load_tasks("tasks:countdown3=2,compound=2,simple=2", seed=3)
    models, kinds = forced_models()
    arms = evaluation.grid(models=["par", "seq"], strategies=["adaptive"], workers=[1], budgets=[1000], finisher=False)
    rows = evaluation.run(models, tasks, arms, out, seeds=[0], generate=forcing(tasks, kinds), progress=False,
                          log=lambda s: None)
    return out, tasks, models, kinds, arms, rows


def test_every_column_from_forced_traces(harness):
    out, tasks, _, _, _, rows = harness
    assert len(rows) == 12 and not any("error" in r for r in rows)
    by = {(r["model"], r["task"]): r for r in rows}
    for t in tasks:
        par, seq = by["par", t.id], by["seq", t.id]
        assert par["correct"] and seq["correct"], (par["answer"], seq["answer"], t.answer)
        forks = len(render(t.problem.parallel, "markers").workers) - 1
        assert par["spawned"] == forks and seq["spawned"] == 0
        assert (forks > 0) == (t.kind != "simple") and par["parallel"] == (t.kind != "simple")
        assert seq["critical_steps"] == seq["tokens"] - 1  # one worker: every token but the last is a step before it
        if forks:
            assert par["critical_steps"] < par["tokens"] - 1  # helpers write side by side
            assert par["overlap"] is not None and 0 <= par["overlap"] < 1
            assert {w["parent"] for w in par["trace"]["workers"][1:]} == {0}
        else:
            assert par["overlap"] is None and par["critical_steps"] == seq["critical_steps"]
        assert par["helpers_done"] is (True if forks else None) and seq["helpers_done"] is None
        for r in (par, seq):
            assert r["fed_once"] is True
            assert r["tokens"] >= r["critical_steps"] > 0 and r["forward_passes"] > 0 and r["wall_time_s"] > 0
            assert r["trace"]["workers"][0]["text"] and r["arm"].startswith(r["model"])
    summary = evaluation.summarize(rows)
    assert len(summary) == 6  # per arm and task kind
    table = {(r["model"], r["kind"]): r for r in summary}
    assert all(r["accuracy"] == 1.0 and r["runs"] == 2 for r in summary)
    assert table["par", "compound"]["accuracy_lo"] < 1.0 == table["par", "compound"]["accuracy_hi"]  # 2 runs prove little
    assert table["par", "simple"]["spawn_rate_unneeded"] == 0.0 and table["par", "simple"]["spawn_rate"] == 0.0
    assert table["par", "compound"]["spawn_rate"] == 1.0 and table["par", "compound"]["spawn_rate_unneeded"] is None
    assert table["par", "compound"]["helpers_done"] == 1.0 and table["par", "simple"]["helpers_done"] is None
    assert table["par", "compound"]["spawned_per_problem"] >= 4 and table["par", "compound"]["overlap"] is not None
    assert all(table["seq", k]["spawned_per_problem"] == 0 and table["seq", k]["overlap"] is None for k in ("compound", "simple"))
    with open(out / "summary.csv") as f:
        header = next(csv.reader(f))
    for column in ("arm", "kind", "accuracy", "accuracy_lo", "accuracy_hi", "mean_tokens", "critical_steps", "critical_steps_ci",
                   "mean_forward_passes", "mean_wall_time_s", "spawned_per_problem", "helpers_done", "fed_once", "spawn_rate_unneeded", "overlap"):
        assert column in header
    for name in ("accuracy_vs_budget.png", "accuracy_vs_latency.png", "accuracy_vs_forward_passes.png", "tokens_per_solved.png"):
        assert (out / name).stat().st_size > 1000


def test_the_budget_is_a_per_worker_limit(harness, tmp_path):
    _, tasks, models, kinds, _, rows = harness
    full = {r["task"]: r["critical_steps"] for r in rows if r["model"] == "seq"}
    budget = sorted(full.values())[len(full) // 2]
    arms = evaluation.grid(models=["seq"], strategies=["adaptive"], workers=[1], budgets=[budget], finisher=False)
    short = evaluation.run(models, tasks, arms, tmp_path, generate=forcing(tasks, kinds), progress=False, plots=False,
                           log=lambda s: None)
    assert max(r["tokens"] for r in short) <= budget
    for r in short:  # a trace cut before its boxed answer has no answer ("\\boxed{..}\n<done>" ends it)
        assert r["correct"] if full[r["task"]] <= budget else (r["correct"] == (full[r["task"]] <= budget + 8))


def test_rows_resume(harness):
    out, tasks, models, kinds, arms, rows = harness
    calls = []

    def counting(*a, **kw):
        calls.append(1)
        return forcing(tasks, kinds)(*a, **kw)

    again = evaluation.run(models, tasks, arms, out, generate=counting, progress=False, plots=False, log=lambda s: None)
    assert calls == [] and len(again) == len(rows)
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(x)["trace"]["workers"] for x in lines)


def test_self_consistency_votes_over_samples(harness, tmp_path):
    _, tasks, models, kinds, _, _ = harness
    simple = [t for t in tasks if t.kind == "simple"][:1]
    arm = evaluation.Arm("seq", "adaptive", "full", 1, 1000, samples=3, finisher=False)
    (row,) = evaluation.run(models, simple, [arm], tmp_path, generate=forcing(simple, kinds), progress=False,
                            plots=False, log=lambda s: None)
    assert " x3 " in row["arm"] and len(row["trace"]) == 3 and row["correct"]
    assert row["tokens"] == 3 * (row["critical_steps"] + 1)  # three runs of one forced trace, side by side


@pytest.mark.parametrize("axis, value, suffix", [("repetition_penalty", 1.2, " rp1.2"), ("stop_repeats", 4, " sr4")])
def test_a_decoding_axis_reaches_generate_and_names_its_arm(harness, tmp_path, axis, value, suffix):
    _, tasks, models, kinds, _, _ = harness
    simple, seen = [t for t in tasks if t.kind == "simple"][:1], []

    def spying(model, question, tokenizer, **kw):
        seen.append(kw.get(axis))
        return forcing(simple, kinds)(model, question, tokenizer, **kw)

    arms = evaluation.grid(models=["seq"], strategies=["adaptive"], workers=[1], budgets=[1000], finisher=False,
                           **{axis: [None, value]})
    rows = evaluation.run(models, simple, arms, tmp_path, generate=spying, progress=False, plots=False, log=lambda s: None)
    assert seen == [None, value] and [r["arm"].endswith(suffix) for r in rows] == [False, True]
    table = evaluation.summarize(rows)
    assert [r[axis] for r in table] == [None, value]
    # the loop stop's count: the forced trace never loops; every worker's finish reason is kept
    assert [r["stopped_repeating"] for r in rows] == [r["stopped_repeating"] for r in table] == [0, 0]
    assert all(w["reason"] for r in rows for w in r["trace"]["workers"])


@pytest.mark.parametrize("arm, match", [
    (dict(strategy="adaptive", visibility="step"), "shared history"),
    (dict(strategy="hogwild", siblings="off"), "does not speak it"),
    (dict(budget=0), "budget=0"),
    (dict(model="nope"), "no model named 'nope'"),
    (dict(strategy="self_consistency", samples=2), "already aggregates"),
    (dict(visibility="sideways"), "unknown visibility"),
    (dict(repetition_penalty=0.0), "repetition_penalty=0.0"),
    (dict(repetition_penalty="1.1"), "give a number"),
    (dict(stop_repeats=1), "stop_repeats=1"),
    (dict(stop_repeats=2.5), "stop_repeats=2.5"),
])
def test_arms_a_model_cannot_run_are_refused_before_compute(arm, match):
    with pytest.raises(ValueError, match=match):
        evaluation.Arm(**{"model": "m", **arm}).check({"m": None})


def test_the_real_checks_run_before_the_grid(tmp_path):
    models, _ = forced_models()
    tasks = evaluation.load_tasks("tasks:simple=1")
    no_tokenizer = {"par": (models["par"][0], None)}
    with pytest.raises(ValueError, match="cannot run on model 'par'.*tokenizer"):
        evaluation.run(no_tokenizer, tasks, [evaluation.Arm("par", "adaptive", workers=1)], tmp_path, progress=False)
    assert not (tmp_path / "runs.jsonl").exists()


def test_a_grid_over_its_time_budget_is_refused_with_its_size(tmp_path):
    models, _ = forced_models()
    tasks = evaluation.load_tasks("tasks:simple=3")
    arms = evaluation.grid(models=["par"], strategies=["adaptive"], workers=[1], budgets=[30000])
    with pytest.raises(ValueError, match=r"3 runs, estimated at .* min, over the stated budget of 0.001 min.*--yes"):
        evaluation.run(models, tasks, arms, tmp_path, max_minutes=0.001, progress=False)


@pytest.mark.parametrize("lines, match", [
    (['{"question": "q", "answer": null}'], "line 1: answer None cannot be compared"),
    (['{"question": "q", "answer": "1"}', '{"question": "", "answer": "1"}'], "line 2: question '' must be non-empty"),
    (['{"question": "q", "answer": "1", "parallel": "yes"}'], "line 1: parallel='yes'"),
    (['{"answer": "1"}'], "line 1: missing field\\(s\\) question"),
])
def test_bad_task_files_name_the_line(tmp_path, lines, match):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=match):
        evaluation.load_tasks(str(path))


@pytest.mark.parametrize("source, match", [("tasks:countdown9=3", "countdown9=3"), ("tasks:simple", "NAME=N"), ("", "give")])
def test_bad_generated_sources(source, match):
    with pytest.raises(ValueError, match=match):
        evaluation.load_tasks(source)


def test_overlap_counts_repeated_lines_among_siblings_only():
    w = lambda parent, text: {"parent": parent, "text": text}  # noqa: E731
    assert evaluation.overlap([w(None, "a\nb")]) is None
    assert evaluation.overlap([w(None, "a\nb"), w(None, "a\nb")]) == 0.5
    assert evaluation.overlap([w(None, "x"), w(0, "a"), w(0, "b"), w(1, "a")]) == 0.0  # different parents
    assert evaluation.overlap([w(0, " a  b "), w(0, "a b"), w(0, "c")]) == pytest.approx(1 / 3)
    assert evaluation.overlap([w(0, "a\n<done>"), w(0, "b\n<done>")]) == 0.0  # markers are not work


def test_cli_refuses_bad_models_and_arms_before_loading(capsys):
    from collab.__main__ import main

    assert main(["eval", "--models", "a=", "--out", "/nonexistent/x"]) != 0
    assert "NAME=MODEL" in capsys.readouterr().err
    assert main(["eval", "--strategy", "hogwild", "--siblings", "off", "--out", "/nonexistent/x"]) != 0
    assert "does not speak it" in capsys.readouterr().err


def test_generated_problems_do_not_depend_on_the_other_tasks_asked():
    mixed = evaluation.load_tasks("tasks:compound=2,countdown4=3,simple=1")
    alone = evaluation.load_tasks("tasks:countdown4=3")
    assert [t.id for t in mixed if t.kind == "countdown4"] == [t.id for t in alone]
    assert all(t.problem.split == "test" for t in mixed)
    assert {t.problem.split for t in evaluation.load_tasks("tasks:simple=3@train")} == {"train"}


def test_rows_from_several_runs_files_merge_into_one_report(harness, tmp_path):
    out, *_ , rows = harness
    lines = (out / "runs.jsonl").read_text().splitlines()
    (tmp_path / "runs.jsonl").write_text("\n".join(lines[:7]) + "\n")
    (tmp_path / "runs-b.jsonl").write_text("\n".join(lines[5:]) + "\n")  # two rows in both files: counted once
    from collab.__main__ import main

    assert main(["eval", "--report", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "summary.csv") as f:
        merged = list(csv.DictReader(f))
    assert sum(int(r["runs"]) for r in merged) == 12 and (tmp_path / "accuracy_vs_budget.png").exists()
    assert main(["eval", "--report", "--out", str(tmp_path / "empty")]) == 2


def test_paired_differences_count_only_the_runs_both_arms_made():
    row = lambda arm, task, seed, **m: {"arm": arm, "task": task, "seed": seed, **m}  # noqa: E731
    rows = [row("base", "t1", 0, overlap=0.1, correct=False), row("base", "t2", 0, overlap=0.3, correct=True),
            row("base", "t3", 0, overlap=None, correct=False),
            row("a", "t1", 0, overlap=0.3, correct=True), row("a", "t2", 0, overlap=0.6, correct=True),
            row("a", "t3", 0, overlap=0.9, correct=True), row("a", "t4", 0, overlap=0.9, correct=True),  # no pair
            row("a", "t1", 1, overlap=0.9, correct=True)]  # another seed: no pair
    (d,) = evaluation.paired(rows, "base", ["overlap", "correct"])
    assert d["overlap_pairs"] == 2 and d["overlap"] == pytest.approx(0.25)  # (0.2 + 0.3) / 2; t3 lacks one side
    assert d["overlap_ci"] == pytest.approx(1.96 * (0.05 ** 2 * 2) ** 0.5 / 2 ** 0.5)
    assert d["correct_pairs"] == 3 and d["correct"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no rows of the baseline arm 'nope'.*'a', 'base'"):
        evaluation.paired(rows, "nope")


def test_a_baseline_is_reported_from_the_rows_and_refused_before_compute_when_not_an_arm(harness, tmp_path, capsys):
    out, tasks, models, kinds, arms, _ = harness
    from collab.__main__ import main

    assert main(["eval", "--report", "--out", str(out), "--baseline", arms[1].name]) == 0
    with open(out / "paired.csv") as f:
        (line,) = list(csv.DictReader(f))  # the other arm, against the baseline, over the 6 problems
    assert line["arm"] == arms[0].name and int(line["critical_steps_pairs"]) == 6
    assert float(line["correct"]) == 0.0  # both traces answer every problem
    assert "against" in capsys.readouterr().out
    with pytest.raises(ValueError, match="baseline='seq' is not an arm of this grid"):
        evaluation.run(models, tasks, arms, tmp_path, generate=lambda *a, **k: pytest.fail("computed"),
                       progress=False, log=lambda s: None, baseline="seq")


def test_runs_made_with_other_weights_are_not_resumed(harness, tmp_path):
    out, tasks, models, kinds, arms, rows = harness
    assert {r["weights"] for r in rows} == {collab.models.weights(models["par"][0])}
    model = models["par"][0]
    model.collab_adapter = "parallel@0123456789ab"  # as if the adapter had been retrained under the same name
    try:
        with pytest.raises(ValueError, match=r"made with other weights \(.*\) than model 'par' has now "
                                             r"\(.* \+ parallel@0123456789ab\): write to a fresh --out"):
            evaluation.run(models, tasks, arms, out, generate=lambda *a, **k: pytest.fail("computed"), progress=False,
                           log=lambda s: None)
    finally:
        del model.collab_adapter
    old = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "weights"}) + "\n"
                                                 for r in old))  # rows from before the field: resumed as they are
    again = evaluation.run(models, tasks, arms, tmp_path, generate=lambda *a, **k: pytest.fail("computed"),
                           progress=False, log=lambda s: None, plots=False)
    assert len(again) == len(old)


def test_an_adapter_digest_changes_with_its_weights(tmp_path):
    from collab.models import adapter_digest

    (tmp_path / "adapter_model.safetensors").write_bytes(b"one")
    first = adapter_digest(tmp_path)
    assert first == adapter_digest(tmp_path) and len(first) == 12
    (tmp_path / "adapter_model.safetensors").write_bytes(b"two")
    assert adapter_digest(tmp_path) != first
