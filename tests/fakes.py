"""Test doubles for pure-logic unit tests only (never on the product's path): a generator whose replies are a
function of the prompt, and the generation service that filters and tasks get."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from s2d.backends.base import Completion
from s2d.generation import GenerationService
from s2d.registry import build


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


def fake_service(tmp_path: Path, gen, technique=None, seed=0) -> GenerationService:
    """The service filters and tasks get, over a scripted generator (the run's technique from a config dict)."""
    built = build("technique", OmegaConf.create(technique)) if technique else None
    return GenerationService(cache_dir=tmp_path, seed=seed, batch_size=8, model_identity={"path": "fake",
                             "dtype": "float32"}, generator=lambda: gen, technique=built,
                             pool_payload={"task": {"name": "t"}, "split": "train"}, pool_key="g")
