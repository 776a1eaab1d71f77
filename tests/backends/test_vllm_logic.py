"""The vLLM backend's pure logic: request seeds, sampling arguments, token counting, engine and CPU settings.
The engine itself runs for real in tests/integration/test_vllm.py."""
from omegaconf import OmegaConf

from s2d.backends.base import Sampling
from s2d.backends.vllm.cpu import cpu_binding, cpu_env
from s2d.backends.vllm.engine import completions_from_outputs, engine_kwargs, request_seeds, sampling_kwargs

CFG = OmegaConf.load("conf/backend/vllm.yaml")


def test_greedy_requests_carry_no_seed_and_sampled_ones_do():
    g = sampling_kwargs(Sampling(max_new_tokens=32), stop_ids=[2], seed=5)
    assert g == {"max_tokens": 32, "stop_token_ids": [2], "temperature": 0.0, "top_p": 1.0}
    s = sampling_kwargs(Sampling(max_new_tokens=8, temperature=0.7, top_p=0.9), stop_ids=[2, 7], seed=11)
    assert (s["temperature"], s["top_p"], s["stop_token_ids"], s["seed"]) == (0.7, 0.9, [2, 7], 11)


def test_request_seeds_depend_on_call_seed_and_position_only():
    assert request_seeds(3, 4) == request_seeds(3, 6)[:4]      # a longer call keeps the first requests' seeds
    assert len(set(request_seeds(3, 100))) == 100
    assert not set(request_seeds(3, 10)) & set(request_seeds(4, 10))
    assert all(0 <= s < 2**63 for s in request_seeds(10**18, 3))


def test_token_counts_exclude_end_of_turn():
    done = completions_from_outputs([(" rb ", [11, 12, 2]), ("long", [5] * 8)], stop_ids=[2])
    assert [(c.text, c.tokens) for c in done] == [("rb", 2), ("long", 8)]


def test_cpu_binding_names_every_allowed_core():
    assert cpu_binding({0, 1}) == "0-1"
    assert cpu_binding({0, 2, 3, 4, 7}) == "0,2-4,7"
    assert cpu_binding({5}) == "5"
    from s2d.backends.vllm.cpu import parse_binding
    assert parse_binding("0,2-4,7") == {0, 2, 3, 4, 7} and parse_binding(cpu_binding({1, 3, 4})) == {1, 3, 4}
    env = cpu_env(CFG)
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0" and env["VLLM_CPU_OMP_THREADS_BIND"]
    assert "glibc.malloc.hugetlb=1" in env["GLIBC_TUNABLES"]
    assert cpu_env(OmegaConf.merge(CFG, {"cpu_threads_bind": "0"}))["VLLM_CPU_OMP_THREADS_BIND"] == "0"


def test_engine_arguments_per_device():
    cpu = engine_kwargs(CFG, "/m", False, cuda=False)
    assert cpu["enable_chunked_prefill"] is False            # per-request CPU generators need whole prefills
    assert cpu["max_num_batched_tokens"] >= cpu["max_model_len"]
    assert "gpu_memory_utilization" not in cpu and "enable_lora" not in cpu
    gpu = engine_kwargs(OmegaConf.merge(CFG, {"tensor_parallel_size": 4, "lora_mode": "request"}), "/m", True,
                        cuda=True)
    assert gpu["tensor_parallel_size"] == 4 and gpu["gpu_memory_utilization"] == 0.85
    assert gpu["enable_lora"] is True and "enable_chunked_prefill" not in gpu
    assert cpu["block_size"] == 32 and "block_size" not in gpu   # auto: 32 on CPU (prefix sharing), vLLM's on GPU
    assert cpu["enforce_eager"] is False                         # the default: torch.compile / CUDA graphs


def test_block_size_is_checked_against_the_device():
    import pytest

    from s2d.backends.vllm.engine import kv_block_size
    from s2d.errors import UserError
    assert kv_block_size("auto", cuda=False) == 32 and kv_block_size(None, cuda=True) is None
    assert kv_block_size(64, cuda=False) == 64 and kv_block_size(16, cuda=True) == 16
    for bad, cuda in ((16, False), ("big", False), (0, True), (24, True)):
        with pytest.raises(UserError, match=f"backend.block_size={bad}: use auto or a positive multiple"):
            kv_block_size(bad, cuda)


def test_replicas_split_prompts_and_devices():
    from s2d.backends.vllm.cpu import replica_devices, split_evenly
    assert split_evenly(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split_evenly([1], 2) == [[1], []]
    one = replica_devices(1, 1, cuda=False)
    assert len(one) == 1 and one[0]["VLLM_CPU_OMP_THREADS_BIND"]


def test_nucleus_filter_keeps_what_vllms_sorting_top_p_keeps():
    import torch
    from vllm.v1.sample.ops.topk_topp_sampler import apply_top_k_top_p_pytorch

    from s2d.backends.vllm.patches import nucleus_logits
    gen = torch.Generator().manual_seed(0)
    for vocab, scale in ((50, 1.0), (49152, 4.0), (49152, 0.3)):   # peaked and flat rows, nucleus past 64 wide
        logits = torch.randn(8, vocab, generator=gen) * scale
        p = torch.tensor([0.5, 0.9, 0.95, 0.99, 1.0, 0.1, 0.95, 0.7])
        ours = nucleus_logits(logits.clone(), p)
        theirs = apply_top_k_top_p_pytorch(logits.clone(), None, p)
        kept, kept_by_vllm = ~torch.isinf(ours), ~torch.isinf(theirs)
        # The same tokens, up to one at the boundary where the two cumulative sums round differently.
        assert ((kept ^ kept_by_vllm).sum(dim=1) <= 1).all(), (kept.sum(1), kept_by_vllm.sum(1))
        assert kept[4].all()                                         # p = 1 keeps everything
        assert torch.equal(ours[kept], logits[kept])
