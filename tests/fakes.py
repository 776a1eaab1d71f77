"""Test doubles for pure-logic unit tests only (never on the product's path): a generator whose replies are a
function of the prompt, and the slice of the pipeline Context that filters and techniques read."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from omegaconf import OmegaConf

from s2d.backends.hf import Completion


class ScriptedGenerator:
    """`reply(prompt) -> text`; tokens = words in the reply; counts prompts it was asked to complete."""

    def __init__(self, reply):
        self.reply = reply
        self.prompts: list[str] = []
        self.tokenizer = WordTokenizer()

    def chat_prompt(self, user, prefill=""):
        return user + prefill

    def generate(self, prompts, sampling, seed=0, prefill="", desc="", progress=True):
        self.prompts += prompts
        return [Completion(text, len(text.split())) for text in map(self.reply, prompts)]


class WordTokenizer:
    model_max_length = 4096

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


def fake_ctx(tmp_path: Path, gen, technique=None, seed=0):
    cfg = OmegaConf.create({"seed": seed, "backend": {"batch_size": 8}, "technique": technique or {},
                            "task": {"name": "t"}})
    return SimpleNamespace(cfg=cfg, cache_dir=tmp_path, generator=lambda: gen, outputs={"generate": {"key": "g"}},
                           model_identity={"path": "fake", "dtype": "float32"})
