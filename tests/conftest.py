"""Tiny randomly initialised decoders, built from configs (no downloads)."""

import os
import sys

import torch

# Triton kernels run in its interpreter on CPU-only machines; the switch must be set before
# anything (transformers included) imports triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from transformers import AutoModelForCausalLM

# The fuzz tests are reproducible in CI: the same examples every run (for one hypothesis
# version), no example database; they size themselves with max_examples.
settings.register_profile(
    "collab", deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("collab")

sys.path.insert(0, str(Path(__file__).parent))  # for `oracle`

from transformers import LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config  # noqa: E402

ROPES = {
    "default": {"rope_type": "default", "rope_theta": 10000.0},
    "linear": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
    "llama3": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    },
    "yarn": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 128},
}
CONFIGS = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config, "qwen3": Qwen3Config}


def tiny_model(family="llama", rope="default", layers=2, seed=0, **overrides):
    """A ~100k-parameter decoder with GQA (4 query heads over 2 KV heads), fp32, eval mode."""
    kwargs = dict(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=512,
        rope_parameters=dict(ROPES[rope]),
        tie_word_embeddings=False,
        eos_token_id=1,
        bos_token_id=0,
        pad_token_id=0,
        sliding_window=None,
    )
    kwargs.update(overrides)
    config = CONFIGS[family](**kwargs)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    # Random init is nearly uniform attention; sharpen it so that a wrong view shows up clearly.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                p.mul_(8.0)
    return model


@pytest.fixture
def make_model():
    return tiny_model


@pytest.fixture(scope="session")
def default_model():
    import collab

    return collab.load()


# The Space as it deploys (tests/deployed_space.py), for tests/test_space_build.py and
# tests/test_space_browser.py: built and installed once per session, served once per module (a
# server is not left running through the rest of the suite).
@pytest.fixture(scope="session")
def space_folder(tmp_path_factory):
    import deployed_space

    return deployed_space.build(tmp_path_factory.mktemp("space"))


@pytest.fixture(scope="session")
def space_python(space_folder, tmp_path_factory):
    import deployed_space

    return deployed_space.install(space_folder, tmp_path_factory.mktemp("venv"))


@pytest.fixture(scope="module")
def space_server(space_folder, space_python, tmp_path_factory):
    import deployed_space

    with deployed_space.serve(space_python, space_folder, tmp_path_factory.mktemp("server") / "app.log") as server:
        yield server
