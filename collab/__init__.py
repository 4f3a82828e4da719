"""collab: concurrent LLM workers that think together over one shared KV cache.

>>> import collab
>>> result = collab.generate(None, "What is 17 * 24?", workers=2, max_new_tokens=64)  # doctest: +SKIP
>>> for worker in result.workers:  # doctest: +SKIP
...     print(worker.name, worker.text)
"""

from importlib import import_module as _import
from importlib.util import find_spec as _find_spec
from pathlib import Path as _Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what static tools (type checkers, the docs' API pages) see; at run time, `_LAZY`
    from . import events
    from .api import Interrupted, generate, stream
    from .batch import StepUpdate
    from .config import MAX_WORKERS
    from .controller import Limits
    from .evaluation import run as eval  # noqa: A001
    from .models import load
    from .protocols import PROTOCOLS
    from .result import Event, Result, Stats, Worker
    from .search import SearchOptions, SearchTree
    from .streaming import Stream
    from .strategies import STRATEGIES
    from .support import SUPPORTED_FAMILIES, SUPPORTED_ROPE, UnsupportedModelError
    from .views import NAMES as VISIBILITIES

# Names load on first use (PEP 562), so the torch-free control plane (`collab.scheduler`,
# `collab.controller`, `collab.views`, `collab.protocols`, ...) imports without torch.
_LAZY = {
    "generate": ("api", "generate"), "stream": ("api", "stream"), "Interrupted": ("api", "Interrupted"),
    "Stream": ("streaming", "Stream"), "MAX_WORKERS": ("config", "MAX_WORKERS"), "load": ("models", "load"),
    "Event": ("result", "Event"), "Result": ("result", "Result"), "Stats": ("result", "Stats"),
    "Worker": ("result", "Worker"), "StepUpdate": ("batch", "StepUpdate"),
    "SUPPORTED_FAMILIES": ("support", "SUPPORTED_FAMILIES"), "SUPPORTED_ROPE": ("support", "SUPPORTED_ROPE"),
    "UnsupportedModelError": ("support", "UnsupportedModelError"), "VISIBILITIES": ("views", "NAMES"),
    "Limits": ("controller", "Limits"), "SearchOptions": ("search", "SearchOptions"), "SearchTree": ("search", "SearchTree"),
    "PROTOCOLS": ("protocols", "PROTOCOLS"), "STRATEGIES": ("strategies", "STRATEGIES"),
    "eval": ("evaluation", "run"),  # collab.eval; not in __all__: `import *` keeps the builtin
}


def __getattr__(name: str):
    if name not in _LAZY:  # a submodule (`collab.models`, `collab.train`) imports on first use too
        if _find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'collab' has no attribute {name!r}")
        return _import(f".{name}", __name__)
    module, attr = _LAZY[name]
    value = getattr(_import(f".{module}", __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


# a folder holding `custom_generate/generate.py`: model.generate(..., custom_generate=CUSTOM_GENERATE, trust_remote_code=True)
CUSTOM_GENERATE = _Path(__file__).parent / "hub"

__all__ = [
    "CUSTOM_GENERATE",
    "Event",
    "Interrupted",
    "Limits",
    "PROTOCOLS",
    "STRATEGIES",
    "SearchOptions",
    "SearchTree",
    "MAX_WORKERS",
    "Result",
    "Stats",
    "Stream",
    "StepUpdate",
    "SUPPORTED_FAMILIES",
    "SUPPORTED_ROPE",
    "UnsupportedModelError",
    "VISIBILITIES",
    "Worker",
    "events",
    "generate",
    "stream",
    "load",
]
__version__ = "0.3.7"
