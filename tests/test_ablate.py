"""The ablation harness: task files, the grid, rows, resuming, crashes, summary and plots."""

import json

import pytest

from collab import ablate


def write(tmp_path, lines):
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_builtin_tasks_ship_with_the_package():
    tasks = ablate.load_tasks("builtin")
    assert len(tasks) >= 20 and all(t.question and t.answer for t in tasks)


@pytest.mark.parametrize(
    "lines,match",
    [
        (['{"question": "q", "answer": "1"}', "{broken"], "line 2: not valid JSON"),
        (['{"question": "q"}'], "line 1: missing field\\(s\\) answer"),
        (['["q", "a"]'], "line 1: expected a JSON object"),
        (['{"id": 1, "question": "q", "answer": "1"}', '{"id": 1, "question": "r", "answer": "2"}'], "line 2: duplicate id"),
    ],
)
def test_bad_task_files_name_the_line(tmp_path, lines, match):
    with pytest.raises(ValueError, match=match):
        ablate.load_tasks(write(tmp_path, lines))


def test_missing_task_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ablate.load_tasks("/nonexistent/tasks.jsonl")


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"visibility": ["ful"]}, "unknown visibility 'ful'"),
        ({"visibility": ["lag:-2"]}, "K must be >= 0"),
        ({"visibility": [[[True]]], "workers": [2]}, "1 rows for 2 workers"),
        ({"workers": [0]}, "workers must be ints >= 1"),
        ({"budgets": [0]}, "budgets must be ints >= 1"),
    ],
)
def test_bad_grids_fail_before_compute(kw, match):
    with pytest.raises(ValueError, match=match):
        ablate.Grid(**kw)


class FakeResult:
    def __init__(self, answer):
        from collab.result import Stats

        self.answer, self.workers, self.events, self.blocks = answer, [], [], {}
        self.stats = Stats(generated_tokens=10, forward_passes=5, wall_time_s=0.1)


def test_rows_resume_and_crashes_are_recorded(tmp_path):
    tasks = ablate.load_tasks(write(tmp_path, [
        '{"id": "a", "question": "1+1", "answer": "2"}', '{"id": "b", "question": "boom", "answer": "3"}']))
    calls = []

    def fake(model, question, **kw):
        calls.append((question, kw["visibility"]))
        if question == "boom":
            raise RuntimeError("model fell over")
        return FakeResult("2" if kw["visibility"] == "full" else "5")

    grid = ablate.Grid(["full", "none"], [2], [16], [0])
    rows = ablate.run(None, None, tasks, grid, tmp_path / "out", generate=fake, progress=False, log=lambda s: None)
    assert len(rows) == 4 and len(calls) == 4
    crashed = [r for r in rows if "error" in r]
    assert len(crashed) == 2 and "model fell over" in crashed[0]["error"]
    table = {r["visibility"]: r for r in ablate.summarize(rows)}  # one kind: the file's question/answer tasks
    assert table["full"]["accuracy"] == 0.5 and table["none"]["accuracy"] == 0.0
    assert table["full"]["tokens_per_solved"] == 10.0 and table["none"]["tokens_per_solved"] is None
    out = tmp_path / "out"
    assert (out / "summary.csv").read_text().startswith("arm,model,strategy,visibility,workers,budget")
    assert (out / "accuracy_vs_forward_passes.png").stat().st_size > 1000
    rows = ablate.run(None, None, tasks, grid, out, generate=fake, progress=False, log=lambda s: None)
    assert len(calls) == 4 and len(rows) == 4  # resumed: nothing ran again
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 4 and {json.loads(x)["task"] for x in lines} == {"a", "b"}


@pytest.mark.slow
def test_ablation_for_real_on_the_default_model(tmp_path):
    import collab

    model, tokenizer = collab.load()
    tasks = ablate.load_tasks("builtin", limit=2)
    grid = ablate.Grid(["full", "none", "step"], [2], [8], [0])
    rows = ablate.run(model, tokenizer, tasks, grid, tmp_path, progress=False, log=lambda s: None)
    assert len(rows) == 6 and not any("error" in r for r in rows)
    assert all(r["forward_passes"] > 0 and r["tokens"] > 0 and r["trace"]["workers"] for r in rows)
    assert (tmp_path / "tokens_per_solved.png").exists()
