"""A LoRA adapter's merged copy (what vLLM's weight swap and lm-eval's vLLM model load): written once into the cache
beside its checkpoint, in the base model's dtype, and reused (a tiny random bf16 model: the logic, not the model)."""
import torch


def _tiny_bf16_model(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False))
    model.to(torch.bfloat16).save_pretrained(folder)
    words = Tokenizer(models.WordLevel({f"w{i}": i for i in range(63)} | {"<unk>": 63}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>").save_pretrained(folder)
    return model


def test_lora_merge_goes_into_the_cache_in_the_model_dtype_once(tmp_path):
    from peft import LoraConfig, get_peft_model
    from safetensors import safe_open

    from s2d.backends.vllm.serve import _weights_folder
    from s2d.models import merged_model, merged_path
    base = tmp_path / "base"
    model = _tiny_bf16_model(base)
    adapter = tmp_path / "cache" / "checkpoints" / "0123abcd"
    lora = get_peft_model(model, LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False))
    lora.save_pretrained(adapter)

    target = merged_path(adapter)
    assert target == tmp_path / "cache" / "merged" / "0123abcd"   # content-addressed by the checkpoint key
    assert _weights_folder(("lora", str(adapter)), str(base)) == str(target)   # the engine's swap merges there
    with safe_open(str(target / "model.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
        merged_up = f.get_tensor("model.layers.0.mlp.up_proj.weight")
    assert dtypes == {torch.bfloat16}   # the base model's dtype, not an fp32 copy
    with safe_open(str(base / "model.safetensors"), "pt") as f:
        assert not torch.equal(merged_up, f.get_tensor("model.layers.0.mlp.up_proj.weight"))   # the adapter is in
    assert sorted(p.name for p in target.parent.iterdir()) == ["0123abcd", "0123abcd.lock"]   # no staging left
    written = (target / "model.safetensors").stat().st_mtime_ns
    assert merged_model(str(base), str(adapter), target) is True   # reused, not merged again
    assert (target / "model.safetensors").stat().st_mtime_ns == written


def test_an_adapter_outside_the_cache_keeps_its_merged_copy_inside_its_folder(tmp_path):
    from s2d.models import merged_path
    assert merged_path(tmp_path / "my-adapter") == tmp_path / "my-adapter" / "merged"
