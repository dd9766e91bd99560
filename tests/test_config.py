"""Tests for experiments/config.py: presets, --set coercion and error messages."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from experiments.config import config_keys, parse_override, resolve_config


@dataclasses.dataclass(frozen=True)
class _Cfg:
    num_seeds: int = 2
    beta: float = 0.5
    use_exact: bool = False
    label: str = "base"
    n_grid: tuple[int, ...] = (10, 100)
    betas: tuple[float, ...] = (0.1,)
    budget: int | None = None
    method: Literal["sft", "rlhf"] = "sft"

    def __post_init__(self) -> None:
        if self.num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {self.num_seeds}")


PRESETS = {
    "smoke": lambda: _Cfg(num_seeds=1),
    "quick": _Cfg,
    "full": lambda: dataclasses.replace(_Cfg(), num_seeds=20),
}


def test_presets_without_overrides():
    assert resolve_config(PRESETS, "smoke") == _Cfg(num_seeds=1)
    assert resolve_config(PRESETS, "full").num_seeds == 20


def test_coercions():
    cfg = resolve_config(
        PRESETS,
        "quick",
        [
            "num_seeds=7",
            "beta=1e-3",
            "use_exact=TRUE",
            "label=a=b",
            "n_grid=1, 2,3",
            "betas=0.1,0.2",
            "budget=5",
            "method=rlhf",
        ],
    )
    assert cfg == _Cfg(7, 1e-3, True, "a=b", (1, 2, 3), (0.1, 0.2), 5, "rlhf")
    assert isinstance(cfg.beta, float) and isinstance(cfg.n_grid[0], int)


@pytest.mark.parametrize(("text", "value"), [("0", False), ("1", True), ("false", False)])
def test_bool_spellings(text, value):
    assert resolve_config(PRESETS, "quick", [f"use_exact={text}"]).use_exact is value


def test_optional_none_empty_tuple_and_last_override_wins():
    cfg = resolve_config(PRESETS, "quick", ["budget=5", "budget=none", "betas="])
    assert cfg.budget is None and cfg.betas == ()


def test_unknown_preset_names_it_and_lists_valid():
    with pytest.raises(ValueError, match=r"'medium'.*full, quick, smoke"):
        resolve_config(PRESETS, "medium")


def test_unknown_key_names_it_and_lists_valid():
    with pytest.raises(ValueError, match=r"'num_seed'.*num_seeds"):
        resolve_config(PRESETS, "quick", ["num_seed=3"])


@pytest.mark.parametrize(
    "override",
    ["num_seeds=2.5", "beta=abc", "use_exact=yes", "n_grid=1,x", "betas=0.1,,", "method=ppo"],
)
def test_bad_value_names_key_and_value(override):
    key, value = override.split("=", 1)
    with pytest.raises(ValueError, match=repr(key)) as err:
        resolve_config(PRESETS, "quick", [override])
    assert repr(value) in str(err.value) or "not one of" in str(err.value)


def test_malformed_override():
    with pytest.raises(ValueError, match="key=value"):
        resolve_config(PRESETS, "quick", ["num_seeds"])
    assert parse_override(" a = b=c ") == ("a", "b=c")


def test_post_init_validation_runs_through_replace():
    with pytest.raises(ValueError, match="num_seeds must be >= 1"):
        resolve_config(PRESETS, "quick", ["num_seeds=0"])


def test_config_keys_skips_non_init_fields():
    @dataclasses.dataclass(frozen=True)
    class WithDerived:
        a: int = 1
        b: int = dataclasses.field(init=False, default=2)

    assert config_keys(WithDerived()) == ("a",)
    with pytest.raises(ValueError, match="unknown config key 'b'"):
        resolve_config({"quick": WithDerived}, "quick", ["b=3"])
