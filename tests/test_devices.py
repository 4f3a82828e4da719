"""Models dispatched with accelerate (`device_map`), including layers offloaded to disk."""

import torch
from oracle import replay
from transformers import AutoModelForCausalLM

import collab
from conftest import tiny_model


def test_offloaded_layers_run_exactly(tmp_path):
    model = tiny_model(layers=3)
    model.save_pretrained(tmp_path)
    device_map = {
        "model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk", "model.layers.2": "cpu",
        "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu",
    }
    dispatched = AutoModelForCausalLM.from_pretrained(
        tmp_path, device_map=device_map, offload_folder=tmp_path / "offload", dtype=torch.float32
    )
    assert dispatched.model.layers[1].self_attn.q_proj.weight.device.type == "meta"  # really offloaded
    seen = []
    hook = collab.cache.SharedKVCache.update

    def spy(self, key_states, value_states, layer_idx, *a, **k):
        out = hook(self, key_states, value_states, layer_idx, *a, **k)
        seen.append((layer_idx, self.keys[layer_idx].device == key_states.device))
        return out

    collab.cache.SharedKVCache.update = spy
    try:
        r = collab.generate(dispatched, list(range(3, 20)), template=None, workers=2, max_new_tokens=4,
                            output_logits=True, ignore_eos=True, do_sample=True, seed=1)
    finally:
        collab.cache.SharedKVCache.update = hook
    assert {layer for layer, _ in seen} == {0, 1, 2} and all(same for _, same in seen)  # KV on each layer's device
    expected = replay(model, r)
    assert max((expected[(w.index, k)] - l).abs().max().item() for w in r.workers for k, l in enumerate(w.logits)) <= 1e-4
