"""First names from the `names` package (1990 US Census lists, MIT), the word source of last-letter and coin flip."""
from __future__ import annotations

import random
from functools import lru_cache

from s2d.packages import package_dir


@lru_cache(maxsize=1)
def first_names() -> tuple[str, ...]:
    folder = package_dir("names", "names==0.3.0", "'names'")
    seen, out = set(), []
    for fname in ("dist.male.first", "dist.female.first"):
        for line in (folder / fname).read_text().splitlines():
            if line.strip():
                name = line.split()[0].capitalize()
                if name not in seen and name.isalpha():
                    seen.add(name)
                    out.append(name)
    return tuple(out)


def split_names(seed: int, test_share: float = 0.3) -> tuple[list[str], list[str]]:
    """Shuffle the names with `seed` and cut them into disjoint train / test pools (no test name is ever
    seen in training, as the paper's 1,200 unique words)."""
    pool = list(first_names())
    random.Random(seed).shuffle(pool)
    cut = int(len(pool) * (1 - test_share))
    return pool[:cut], pool[cut:]


def draw_groups(pool: list[str], k: int, count: int, seed: int) -> list[list[str]]:
    """`count` groups of `k` distinct names drawn from `pool`; deterministic and prefix-stable in `count`."""
    rng = random.Random(seed)
    return [rng.sample(pool, k) for _ in range(count)]


def name_splits(seed: int, k: int, train_size: int, test_size: int) -> tuple[list[list[str]], list[list[str]]]:
    """Groups of `k` names for the train and the test split, drawn from disjoint name pools."""
    train_pool, test_pool = split_names(seed)
    return draw_groups(train_pool, k, train_size, seed), draw_groups(test_pool, k, test_size, seed + 1)
