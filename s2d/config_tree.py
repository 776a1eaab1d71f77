"""The config tree as the command line's schema: where it lives, its groups and options, and the checks that turn a
mistyped group option or key into one clear line before any model loads (used by `s2d`, s2d/cli.py, and by each
`tasks` entry of a multi-task run, s2d/loops/)."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from s2d.errors import UserError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def default_cache_dir() -> str:
    if os.environ.get("S2D_CACHE_DIR"):
        return os.environ["S2D_CACHE_DIR"]
    from platformdirs import user_cache_dir
    return user_cache_dir("s2d")


if not OmegaConf.has_resolver("s2d_cache"):
    OmegaConf.register_new_resolver("s2d_cache", default_cache_dir)


def config_groups() -> dict[str, list[str]]:
    """Every config group (nested ones as `task/prompts`) with its options."""
    groups: dict[str, list[str]] = {}
    for path in sorted(CONF_DIR.rglob("*.yaml")):
        if path.parent != CONF_DIR:
            groups.setdefault(path.parent.relative_to(CONF_DIR).as_posix(), []).append(path.stem)
    return groups


def parse_overrides(argv: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if not a.startswith("-") and "=" in a and not a.startswith("hydra")]
    try:
        return OverridesParser.create().parse_overrides(args)
    except Exception as e:   # Hydra's grammar errors: keep the first line
        raise UserError(f"cannot parse overrides {args}: {str(e).splitlines()[0]}") from None


def check_group_overrides(argv: list[str]) -> None:
    """One clear line for an unknown group option (Hydra's own message is several lines and a stack hint)."""
    groups = config_groups()
    for o in parse_overrides(argv):
        group = o.key_or_group
        if group not in groups or o.is_delete():
            continue
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        for v in values:
            if v not in groups[group] and not (group in OVERLAYS and v == "null"):
                raise UserError(f"unknown {group} '{v}'; valid choices: {', '.join(groups[group])}")


# Groups whose files override other groups' values (`# @package _global_`): their keys are checked.
OVERLAYS = ("experiment", "hparams_search", "debug")
# Maps whose keys are the user's to choose (benchmark names, template fields), not part of the schema.
OPEN_MAPS = ("benchmarks.limit_overrides", "task.fields", "task.templates", "task.prompts")


def leaf_keys(node, prefix: str = "") -> list[str]:
    """Dotted paths of every mapping key under `node` (lists are values: their items are not keys)."""
    from omegaconf import DictConfig

    out = []
    for key in node.keys() if isinstance(node, DictConfig) else []:
        path = f"{prefix}{key}"
        out.append(path)
        if path not in OPEN_MAPS:
            out += leaf_keys(node._get_node(key), path + ".")
    return out


def _first_values(argv: list[str]) -> list[str]:
    """The group overrides with the first value of each sweep: one config to check the whole sweep's keys on."""
    groups = config_groups()
    picked = []
    for o in parse_overrides(argv):
        if o.key_or_group in groups and not o.is_delete():
            first = next(iter(o.sweep_string_iterator())) if o.is_sweep_override() else o.get_value_element_as_str()
            picked.append(f"{o.key_or_group}={first}")
    return picked


def check_config_keys(argv: list[str]) -> None:
    """The config tree is the schema: a key that no config file defines is a one-line error, whether it comes from
    the command line (Hydra's own message spans five lines) or from an experiment file (Hydra would silently add
    it beside the real one). Runs before any model loads."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    groups = config_groups()
    group_args = _first_values(argv)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        final = compose(config_name="config", overrides=group_args, return_hydra_config=True)
        base = compose(config_name="config", overrides=_base_choices(final, groups))
        # An overlay's keys are checked against the groups it picks itself too: `experiment=demo benchmarks=none`
        # switches the benchmarks the demo file sizes (`benchmarks.limit`), which is no typo.
        own = compose(config_name="config", overrides=[a for a in group_args if a.split("=")[0] in OVERLAYS],
                      return_hydra_config=True)
        own_base = compose(config_name="config", overrides=_base_choices(own, groups))
    for o in parse_overrides(argv):   # `key=value` on the command line (`+key`: checked by s2d/schema.py)
        key = o.key_or_group
        if key in groups or o.is_add() or o.is_force_add() or o.is_delete():
            continue
        # `final` holds what the overlays set too: `experiment=multitask tasks.1.weight=2` names a list item
        # that only the experiment file has.
        if OmegaConf.select(final, key, default=_MISSING) is _MISSING and not key.startswith(OPEN_MAPS):
            raise UserError(f"unknown config key '{key}' on the command line; {_valid_under(base, key, final)}")
    overlays = {g: final.hydra.runtime.choices.get(g) for g in OVERLAYS if final.hydra.runtime.choices.get(g)}
    if overlays:
        known = set(leaf_keys(base)) | set(leaf_keys(own_base))
        for key in leaf_keys(final):
            if key not in known and not key.startswith(OPEN_MAPS + ("hydra",)):
                files = " or ".join(f"conf/{g}/{c}.yaml" for g, c in overlays.items())
                raise UserError(f"unknown config key '{key}' in {files}; {_valid_under(base, key)}")


_MISSING = object()


def _base_choices(composed, groups) -> list[str]:
    """The group choices of a composed config as overrides, without the overlay groups."""
    return [f"{g}={c}" for g, c in composed.hydra.runtime.choices.items()
            if g in groups and g not in OVERLAYS and c is not None]


def _valid_under(base, key: str, overlaid=None) -> str:
    """The valid keys beside `key`: in the groups' own config, else (a list item of `tasks`) where the overlays
    put them."""
    from omegaconf import OmegaConf

    parent = key.rsplit(".", 1)[0] if "." in key else ""
    node = OmegaConf.select(base, parent) if parent else base
    if parent and node is None and overlaid is not None:
        node = OmegaConf.select(overlaid, parent)
    keys = sorted(str(k) for k in node.keys()) if hasattr(node, "keys") else []
    return f"valid keys under '{parent or '<root>'}': {', '.join(keys)}"
