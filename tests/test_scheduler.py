"""The control plane without torch: the scheduler, controller, views, blocks, protocols and search
import in a process where torch cannot be imported, and a scripted schedule runs there (a pure
Python stand-in for the model runner writes each worker's script, one character a token)."""

import json
import subprocess
import sys
import textwrap

BLOCK_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "transformers", "numpy"):
            raise ImportError(f"{name} is blocked: the control plane must not need it")
sys.meta_path.insert(0, NoTorch())
"""

def run_without_torch(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_control_plane_imports_and_schedules_without_torch():
    out = run_without_torch("""
        import json, sys
        from types import SimpleNamespace
        import collab.blocks, collab.controller, collab.protocols, collab.search, collab.views, collab.workers
        from collab.batch import Drawn
        from collab.config import RunOptions
        from collab.controller import Controller, Limits
        from collab.protocols import Markers
        from collab.scheduler import Scheduler
        from collab.template import Encoded

        PROMPT = "Q: two parts.\\n"
        SCRIPTS = ["plan <spawn>a</spawn><spawn>b</spawn> <wait>\\nboth. <done>",
                   "\\nHelper task: a\\na=1 <done>", "\\nHelper task: b\\nb=2 <done>"]
        decode = lambda ids: "".join(map(chr, ids))
        encode = lambda text: [ord(c) for c in text]
        adaptive = SimpleNamespace(controller=Controller(Markers(), Limits(), PROMPT), encode=encode,
                                   finisher=None, finisher_tokens=0, roots_spawn=())
        options = RunOptions(workers=1, max_new_tokens=80, page_size=8)
        scheduler = Scheduler(Encoded(encode(PROMPT), [[]], ["root"]), options, decode=decode, eos={3},
                              context=1024, adaptive=adaptive)

        def runner(batch):  # what the model would sample: the next character of the worker's script
            tokens = {}
            for w in [*batch.sample, *batch.draws]:
                own = decode(scheduler.slots[w].worker.header_ids + scheduler.slots[w].worker.token_ids)
                script = next(s for s in SCRIPTS if s.startswith(own))
                tokens[w] = ord(script[len(own)]) if len(script) > len(own) else 3
            return Drawn(tokens)

        scheduler.prefill()
        scheduler.postprocess(first := scheduler.first(), runner(first))
        batches = 0
        while scheduler.busy:
            batch = scheduler.schedule()
            fed = [f.worker for f in batch.feeds]
            assert len(fed) == len(set(fed)) and set(batch.sample) <= set(fed)
            scheduler.postprocess(batch, runner(batch))
            batches += 1
        result = scheduler.result
        kinds = [e.kind for e in result.events]
        print(json.dumps(["torch" in sys.modules, [decode(w.token_ids) for w in result.workers], kinds.count("spawn"),
                          kinds.count("join"), [w.finish_reason for w in result.workers], batches]))
    """)
    no_torch, texts, spawns, joins, reasons, batches = json.loads(out)
    assert no_torch is False
    assert texts[1:] == ["a=1 <done>", "b=2 <done>"] and texts[0].endswith("both. <done>")
    assert spawns == 2 and joins == 1 and all(r.startswith("done marker") for r in reasons)
    assert batches > len(texts[0])  # the helpers ran beside the root, one step at a time


def test_the_renderers_and_the_search_import_without_torch():
    out = run_without_torch("""
        import sys
        import collab, collab.display, collab.plots, collab.result, collab.search, collab.strategies, collab.tasks
        print("torch" in sys.modules)
    """)
    assert out.strip() == "False"


def test_the_package_imports_its_names_and_submodules_on_first_use():
    out = run_without_torch("""
        import collab
        print(collab.tasks.make("compound", 1, seed=0)[0].answer != "", collab.blocks.__name__, sorted(collab.PROTOCOLS)[:1])
        try:
            collab.no_such_name
        except AttributeError as error:
            print(error)
    """)
    assert out.splitlines() == ["True collab.blocks ['apr']", "module 'collab' has no attribute 'no_such_name'"]
