"""Synthetic tasks for fine-tuning (collab/tasks): seeded and split by content, solvers that are
right, traces that render in every protocol that can express them and read back through that
protocol's own parser, and one replay through the real runtime with forced text."""

import ast
import doctest
import importlib
import re
from dataclasses import replace
from pathlib import Path

import pytest
from scripted import CharTokenizer, Script

import collab
from collab.answers import extract
from collab.tasks import TASKS, Fork, Text, Trace, check, correct, counts, make, render, renderable, split_of
from collab.tasks.compound import combine
from collab.tasks.countdown import valid
from collab.tasks.trace import index_heads
from conftest import tiny_model

ALL = ("markers", "multiverse", "threadweaver", "apr")
EXPRESSIBLE = {"countdown3": ALL, "countdown4": ALL, "compound": ALL[:3], "simple": ALL}


@pytest.fixture(scope="module")
def problems():
    return {name: make(name, 40, seed=1) + make(name, 8, seed=1, split="test") for name in TASKS}


@pytest.mark.parametrize("name", list(TASKS))
def test_the_same_seed_makes_the_same_problems_and_another_seed_others(name):
    first, again, other = make(name, 6, seed=3), make(name, 6, seed=3), make(name, 6, seed=4)
    assert first == again and [p.key for p in first] != [p.key for p in other]
    assert len({p.key for p in first}) == 6 and all(p.task == name for p in first)


@pytest.mark.parametrize("name", list(TASKS))
def test_held_out_problems_never_appear_in_train(name):
    train = [p for seed in (0, 1) for p in make(name, 40, seed=seed)]
    test = make(name, 10, seed=0, split="test")
    assert {p.split for p in train} == {"train"} and {p.split for p in test} == {"test"}
    assert not {p.key for p in train} & {p.key for p in test}
    assert not {p.question for p in train} & {p.question for p in test}


def test_the_split_is_a_stable_hash_of_the_content():
    assert [i for i in range(30) if split_of(f"k{i}") == "test"] == [18]  # sha256, the same in every process
    share = sum(split_of(f"key {i}") == "test" for i in range(4000)) / 4000
    assert 0.08 < share < 0.12


@pytest.mark.parametrize("name", list(TASKS))
def test_every_trace_renders_where_it_can_and_reads_back_through_the_protocol(name, problems):
    for p in problems[name]:
        assert renderable(p.parallel) == EXPRESSIBLE[name] and renderable(p.sequential) == ALL
        for protocol in EXPRESSIBLE[name]:
            for trace in (p.sequential, p.parallel):
                r = render(trace, protocol)
                check(r)  # scan spawns exactly these heads; joins feed exactly these texts; ends where it should
                assert len(r.workers) == 1 + sum(len(f.tasks) for f in trace.forks)
                for w in r.workers:
                    assert w.text.isascii() and "".join(w.text[a:b] for a, b in w.loss) == w.written
                    assert len(w.written) <= 800, f"{name} in {protocol}: worker {w.index} writes {len(w.written)} characters"
                assert correct(p, extract(r.root.text, "boxed"))  # Countdown's parallel solution may be another one


def test_index_heads_name_helpers_by_number_and_move_their_task_into_their_work(problems):
    for p in problems["compound"][:10]:
        brief = index_heads(p.parallel)
        fork, long = brief.forks[0], p.parallel.forks[0]
        assert fork.tasks == tuple(f"part {i}" for i in range(1, len(long.tasks) + 1)) and fork.conclusion == long.conclusion
        assert [c.text.split("\n", 1) for c in fork.children] == [[t, c.text] for t, c in zip(long.tasks, long.children)]
        assert [q for q in brief.parts if not isinstance(q, Fork)] == [q for q in p.parallel.parts if not isinstance(q, Fork)]
        for protocol in EXPRESSIBLE["compound"]:
            r = render(brief, protocol)
            check(r)
            assert [w.written.lstrip().startswith(t) for w, t in zip(r.workers[1:], long.tasks)] == [True] * len(long.tasks)
        assert "<spawn>part 2</spawn>" in render(brief, "markers").root.text
    assert index_heads(p.sequential) == p.sequential  # nothing forks, nothing changes


def test_check_catches_a_rendering_that_collab_would_read_otherwise(problems):
    p = problems["compound"][0]
    r = render(p.parallel, "multiverse")
    wrong_head = replace(r, workers=(r.root, replace(r.workers[1], head="\n<Path>\n7:"), *r.workers[2:]))
    with pytest.raises(AssertionError, match="collab spawns heads"):
        check(wrong_head)
    root = r.root.pieces
    wrong_join = replace(r, workers=(replace(r.root, pieces=(root[0], replace(root[1], text="\n"), *root[2:])), *r.workers[1:]))
    with pytest.raises(AssertionError, match="collab feeds '<Conclusion>"):
        check(wrong_join)


def test_apr_children_start_from_their_node_and_the_root_reads_their_paths(problems):
    p = next(p for p in problems["countdown4"] if len(p.parallel.forks[0].tasks) == 4)
    r = render(p.parallel, "apr")
    numbers, target = p.info["numbers"], p.info["target"]
    assert r.root.written.startswith(f"Moving to Node #0\nCurrent State: {target}:[{', '.join(map(str, numbers))}], Operations: []\n")
    for k, child in enumerate(r.workers[1:]):
        assert child.head.startswith(f"Moving to Node #0,{k}\nCurrent State: {target}:[") and child.written.startswith("\n")
    fed = r.root.pieces[1].text
    assert fed.startswith("<Sub Searches>\n") and fed.endswith("<End Sub Searches>\n") and "<Goal Reached in Sub Search" in fed


def _follows(ops: list[str], numbers, target) -> bool:
    """The operations take numbers still there, compute right, stay non-negative integers, and end at the target."""
    left = list(numbers)
    for op in ops:
        a, sign, b, r = re.fullmatch(r"(\d+)([-+*/])(\d+)=(\d+)", op).groups()
        a, b, r = int(a), int(b), int(r)
        for x in (a, b):
            if x not in left:
                return False
            left.remove(x)
        if {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b and a % b == 0 else -1}[sign] != r:
            return False
        left.append(r)
    return left == [target]


@pytest.mark.parametrize("name", ["countdown3", "countdown4"])
def test_countdown_solutions_reach_the_target_with_exactly_the_numbers(name, problems):
    for p in problems[name]:
        numbers, target = p.info["numbers"], p.info["target"]
        assert len(numbers) == int(name[-1]) and 10 <= target <= 100
        assert valid(p.answer, numbers, target) and correct(p, p.answer)
        for text in (p.sequential.text, render(p.parallel, "markers").root.text):
            ops = re.findall(r"^Goal Reached(?: at Node #[\d,]+)?: (.+)$", text, re.M)[-1].split(", ")
            assert _follows(ops, numbers, target), (p.question, text)
            assert valid(extract(text, "boxed"), numbers, target)
        fork = p.parallel.forks[0]
        solution = fork.conclusion.split(": ", 1)[1]  # the root states a helper's solution
        assert 1 <= len(fork.tasks) <= 4 and any(c.text.endswith(f"Goal Reached: {solution}") for c in fork.children)
    assert not valid("(1+2)*3", (1, 2, 3, 3), 9) and not valid("2**3", (2, 3), 8) and not valid("8/(2-2)", (8, 2, 2), 4)


UNITS = {("hours", "minutes"): 60, ("minutes", "seconds"): 60, ("days", "hours"): 24, ("weeks", "days"): 7,
         ("kilometers", "meters"): 1000, ("kilograms", "grams"): 1000, ("meters", "centimeters"): 100,
         ("feet", "inches"): 12, ("yards", "feet"): 3, ("liters", "milliliters"): 1000}


def _part_answer(key: str) -> str:
    """Each kind of part solved again from its canonical key, apart from the generator."""
    kind, rest = key.split(":", 1)
    if kind == "arith":
        a, sign, b = re.fullmatch(r"(\d+)([-+*/])(\d+)", rest).groups()
        a, b = int(a), int(b)
        assert sign != "/" or a % b == 0
        return str({"+": a + b, "-": a - b, "*": a * b, "/": a // b}[sign])
    if kind == "rate":
        how, _, speed, hours = rest.split(":")
        return str(int(speed) * int(hours)) if how == "far" else hours
    if kind == "conv":
        n, big, small = rest.split(":")
        return str(int(n) * UNITS[big, small])
    if kind == "letter":
        word, n = rest.split(":")
        return word[int(n) - 1]
    what, word = rest.split(":")
    return str(sum(c in "aeiou" for c in word) if what == "vowels" else len(word))


def test_compound_answers_combine_the_parts_answers(problems):
    seen = set()
    for p in problems["compound"]:
        parts, how = p.info["parts"], p.info["combine"]
        assert 2 <= len(parts) <= 6 and list(parts) == [_part_answer(k) for k in p.info["keys"]]
        assert p.answer == combine(how, list(parts)) and correct(p, p.answer.upper())
        fork = p.parallel.forks[0]
        for answer, child in zip(parts, fork.children):  # each helper states its part's answer
            assert re.search(rf"(?<![\w]){re.escape(answer)}(?![\w])", child.text)
        assert extract(p.sequential.text, "boxed") == p.answer
        seen |= {how, p.question.split(" ")[0], p.sequential.text.split("\n")[0], p.parallel.parts[0].text}
    assert {"sum", "max", "list"} <= seen and len(seen) > 15  # varied phrasing


def test_simple_problems_never_fork(problems):
    for p in problems["simple"]:
        assert p.parallel is p.sequential and not p.parallel.forks
        assert p.answer == _part_answer(p.key.split(":", 1)[1]) and correct(p, p.answer)
        for protocol in ALL:
            r = render(p.parallel, protocol)
            assert len(r.workers) == 1 and extract(r.root.written, "boxed") == p.answer


def test_the_package_imports_no_torch_and_its_examples_run():
    folder = Path(collab.__file__).parent / "tasks"
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(name.split(".")[0] == "torch" for name in names), path.name
        module = importlib.import_module("collab.tasks" + ("" if path.stem == "__init__" else f".{path.stem}"))
        assert doctest.testmod(module).failed == 0, path.name


def test_unknown_names_and_bad_arguments_say_what_is_valid():
    with pytest.raises(ValueError, match="unknown task 'sudoku'; valid tasks are 'countdown3', 'countdown4', 'compound', 'simple'"):
        make("sudoku", 3)
    with pytest.raises(ValueError, match="split='dev': choose one of 'train', 'test'"):
        make("simple", 3, split="dev")
    with pytest.raises(ValueError, match="n=-1"):
        make("simple", -1)
    with pytest.raises(ValueError, match="no renderer for protocol 'npr'"):
        render(Trace.of("x"), "npr")
    fork = Fork(("compute 2+3",), (Trace.of("5"),), "so 5")
    with pytest.raises(ValueError, match="tasks start with 'Node #id'"):
        render(Trace((fork,)), "apr")
    with pytest.raises(ValueError, match="begins or ends with a newline"):
        Text("x\n")
    with pytest.raises(ValueError, match="depth 1"):
        Fork(("a",), (Trace((fork,)),), "done")
    with pytest.raises(ValueError, match="2 tasks but children"):
        Fork(("a", "b"), (Trace.of("x"),), "done")
    with pytest.raises(ValueError, match="two Texts in a row"):
        Trace((Text("a"), Text("b")))


@pytest.mark.parametrize("spec, match", [
    ("compound", "item 'compound': write NAME=N with NAME one of 'countdown3', 'countdown4', 'compound', 'simple'"),
    ("compund=3", "item 'compund=3': write NAME=N"), ("compound=x", "item 'compound=x'"), ("compound=-2", "item 'compound=-2'"),
    ("simple=1,,compound=2", "item '': write NAME=N"), ("simple=1, simple=2", "item 'simple=2': 'simple' given twice"),
])
def test_task_counts_name_the_bad_item_for_train_and_eval_alike(spec, match):
    assert counts(" compound=3 ,simple=0") == {"compound": 3, "simple": 0}
    with pytest.raises(ValueError, match=f"^--tasks {re.escape(match)}"):
        counts(spec, "--tasks")
    with pytest.raises(ValueError, match=re.escape(match)):
        collab.evaluation.load_tasks(f"tasks:{spec}")


def _replay(problem, protocol, strategy, **kw):
    rendering = render(problem.parallel, protocol)
    prompt = problem.question + "\n"
    tok = CharTokenizer()
    result = collab.generate(
        tiny_model(vocab_size=128, eos_token_id=3, max_position_embeddings=2048), prompt, tokenizer=tok, strategy=strategy,
        template=None, max_new_tokens=max(len(w.written) for w in rendering.workers) + 8, seed=0, progress=False,
        logits_processor=[Script(len(prompt), [w.text for w in rendering.workers])], **kw,
    )
    return rendering, result, tok


@pytest.mark.parametrize("protocol, strategy, done", [
    ("markers", "adaptive", "'<done>'"), ("multiverse", "multiverse", "'</Path>'"),
])
def test_rendered_traces_replay_through_the_runtime_as_rendered(protocol, strategy, done):
    """Each worker forced to write its rendered stream: collab spawns the rendered children with
    the rendered heads, each ends at its done marker, and every stream, the root's join texts
    included, is what collab fed."""
    candidates = make("compound", 12, seed=0)
    problem = min(candidates, key=lambda p: len(render(p.parallel, protocol).root.text) + len(p.question))
    extra = {"finisher": False} if strategy == "adaptive" else {}
    rendering, result, tok = _replay(problem, protocol, strategy, **extra)
    assert len(result.workers) == len(rendering.workers)
    spawns = [h for e in result.events if e.kind == "spawn" for h in e.info["heads"]]
    assert spawns == [w.head for w in rendering.workers[1:]]
    for worker, stream in zip(result.workers, rendering.workers):
        own = "".join(tok.decode(result.blocks[b]) for b in worker.blocks)
        assert (worker.parent, worker.head or "", own) == (stream.parent, stream.head, stream.text)
        if worker.parent is not None:
            assert worker.finish_reason == f"done marker {done}"
    assert result.workers[0].finish_reason == ("done marker '<done>'" if protocol == "markers" else "eos")
    assert extract(result.workers[0].text, "boxed") == problem.answer
