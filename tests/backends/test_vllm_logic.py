"""The vLLM backend's pure logic (vLLM itself needs a GPU): sampling arguments and token counting."""
from types import SimpleNamespace

from s2d.backends.hf import Sampling
from s2d.backends.vllm_backend import completions_from_outputs, sampling_kwargs


def test_greedy_and_sampled_arguments():
    g = sampling_kwargs(Sampling(max_new_tokens=32), seed=5, stop_ids=[2])
    assert g == {"max_tokens": 32, "stop_token_ids": [2], "seed": 5, "temperature": 0.0, "top_p": 1.0}
    s = sampling_kwargs(Sampling(max_new_tokens=8, temperature=0.7, top_p=0.9), seed=1, stop_ids=[2, 7])
    assert s["temperature"] == 0.7 and s["top_p"] == 0.9 and s["stop_token_ids"] == [2, 7]


def test_token_counts_exclude_end_of_turn():
    outs = [SimpleNamespace(outputs=[SimpleNamespace(text=" rb ", token_ids=[11, 12, 2])]),
            SimpleNamespace(outputs=[SimpleNamespace(text="long", token_ids=[5] * 8)])]
    done = completions_from_outputs(outs, stop_ids=[2])
    assert [(c.text, c.tokens) for c in done] == [("rb", 2), ("long", 8)]
