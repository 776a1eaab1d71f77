"""Test doubles for pure-logic unit tests only (never on the product's path): a generator whose replies are a
function of the prompt, and the generation service that filters and tasks get."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from s2d.backends.base import Completion
from s2d.filters.base import Pool
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


def fake_service(tmp_path: Path, gen, seed=0) -> GenerationService:
    """The service filters and tasks get, over a scripted generator."""
    return GenerationService(cache_dir=tmp_path, seed=seed, batch_size=8, model_identity={"path": "fake",
                             "dtype": "float32"}, generator=lambda: gen)


def fake_pool(records: dict, technique: dict | None = None) -> Pool:
    """A pool of System 2 records as a filter gets it (the technique that made them from a config dict)."""
    built = build("technique", OmegaConf.create(technique)) if technique else None
    return Pool(records, key="g", payload={"task": {"name": "t"}, "split": "train"}, technique=built)
