"""collab: concurrent LLM workers that think together over one shared KV cache.

>>> import collab
>>> result = collab.generate(None, "What is 17 * 24?", workers=2, max_new_tokens=64)  # doctest: +SKIP
>>> for worker in result.workers:  # doctest: +SKIP
...     print(worker.name, worker.text)
"""

from . import attention as _attention  # noqa: F401  (registers the "collab" attention implementation)
from . import cache  # noqa: F401
from . import events
from .api import Interrupted, generate, stream
from .stream import Stream
from .config import MAX_WORKERS
from .models import load
from .result import Event, Result, Stats, Worker
from .runtime import StepUpdate
from .support import SUPPORTED_FAMILIES, SUPPORTED_ROPE, UnsupportedModelError
from .views import NAMES as VISIBILITIES
from .controller import Limits
from .search import SearchOptions, SearchTree
from .protocols import PROTOCOLS
from .strategies import STRATEGIES
from pathlib import Path as _Path

from .evaluation import run as eval  # noqa: A001  (collab.eval; not in __all__: `import *` keeps the builtin)

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
__version__ = "0.2.0"
