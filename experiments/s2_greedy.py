"""S2 — Prop 3.1: greedy decoding returns the sequence argmax once pi(y*) > 1/2.

Prop 3.1: if the sequence argmax ``y*`` of an autoregressive model is unique with
``pi(y*) > 1/2``, greedy decoding returns it, because every conditional along the argmax path is
``>= pi(y*) > 1/2``. Below 1/2 greedy (and beam search, and low-temperature sampling) are
token-level heuristics that can miss ``y*``; the tightness instance
(:func:`theory.ar_instances.greedy_tightness_instance`) makes greedy fail at
``pi(y*) = 1/2 - eta``.

Models: thousands of random tabular AR models :func:`sharpen.tabular_ar` per ``(V, H)`` cell,
one ``vmap`` over PRNG keys. Each model draws its own Dirichlet concentration, log-uniform on
``[concentration_min, concentration_max]``, so ``pi(y*)`` spreads over ``(0, 1]``. Per model:
the exact argmax set and ``pi(y*)`` by enumeration of all ``V^H`` sequences
(:func:`sharpen.autoregressive.enumerate_sequences`, exact ties only), then whether each decoder's
output lies in the argmax set: greedy (lowest-index ties), beam search of widths 2 and 4 (top
beam), and one ancestral sample at temperature ``low_temperature``.

Checks (``summary.csv``): (a) greedy success over models with a unique argmax and
``pi(y*) > 1/2`` (predicted exactly 1.0, over at least ``min_confident_models`` models);
(b) greedy failures exist below 1/2 (info: the success rate there); (c) greedy misses the
argmax of the tightness instance at ``eta``; (d) beam-4 and low-temperature success below 1/2
(info).

Command: ``sharpen run s2 [--preset quick|full]``; feeds ``figures/fig_greedy_threshold.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from experiments import io
from experiments.registry import ExperimentSpec, register
from sharpen import autoregressive, decoding
from theory import ar_instances

NAME = "s2"
_METHODS = ("greedy", "beam2", "beam4", "lowtemp")


@dataclasses.dataclass(frozen=True)
class Config:
    """Random tabular AR models per ``(V, H)`` cell (THEORY §3.2, §4.1 Prop 3.1, §5.3 S2)."""

    grid: tuple[tuple[int, int], ...] = ((2, 6), (3, 4), (4, 3))
    models_per_cell: int = 2000
    concentration_min: float = 0.005
    concentration_max: float = 1.0
    low_temperature: float = 0.25
    tightness_eta: float = 0.1
    min_confident_models: int = 1000
    seed: int = 0

    def __post_init__(self):
        if not self.grid or any(
            len(cell) != 2 or cell[0] < 2 or cell[1] < 1 or cell[0] ** cell[1] > 2**16
            for cell in self.grid
        ):
            raise ValueError(
                f"grid must be non-empty (V, H) pairs with V >= 2, H >= 1, V^H <= 2^16, "
                f"got {self.grid}"
            )
        if len(set(self.grid)) != len(self.grid):
            raise ValueError(f"grid must hold distinct (V, H) pairs, got {self.grid}")
        if self.models_per_cell < 1:
            raise ValueError(f"models_per_cell must be >= 1, got {self.models_per_cell}")
        if not 0 < self.concentration_min <= self.concentration_max:
            raise ValueError(
                f"concentration_min must satisfy 0 < concentration_min <= concentration_max, "
                f"got {self.concentration_min}, {self.concentration_max}"
            )
        if not math.isfinite(self.concentration_max):
            raise ValueError(f"concentration_max must be finite, got {self.concentration_max}")
        if not 0 < self.low_temperature < 1:
            raise ValueError(f"low_temperature must lie in (0, 1), got {self.low_temperature}")
        if not 0 < self.tightness_eta < 1 / 6:
            raise ValueError(f"tightness_eta must lie in (0, 1/6), got {self.tightness_eta}")
        if self.min_confident_models < 1:
            raise ValueError(f"min_confident_models must be >= 1, got {self.min_confident_models}")


def smoke() -> Config:
    """CI-sized: two small cells, 200 models each, ~3 s.

    ``sharpen run s2 --preset smoke``; feeds ``figures/fig_greedy_threshold.py``.
    """
    return Config(grid=((2, 4),), models_per_cell=400, min_confident_models=50)


def quick() -> Config:
    """``sharpen run s2`` (``sharpen repro`` default): (V, H) in (2,6), (3,4), (4,3), 2000 models
    each, ~10 s on 2 cores.

    Feeds ``figures/fig_greedy_threshold.py``.
    """
    return Config()


def full() -> Config:
    """``sharpen run s2 --preset full``: six cells up to V^H = 1024, 20000 models each
    (runtime not yet measured; expect minutes).

    Feeds ``figures/fig_greedy_threshold.py``.
    """
    return Config(
        grid=((2, 6), (2, 10), (3, 4), (3, 6), (4, 3), (4, 5)),
        models_per_cell=20000,
        min_confident_models=10000,
    )


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


def _sequence_index(tokens_H: jax.Array, vocab_size: int) -> jax.Array:
    """Row of ``tokens_H`` in :func:`enumerate_sequences` order (position 0 most significant)."""
    horizon = tokens_H.shape[0]
    powers_H = jnp.asarray([vocab_size ** (horizon - 1 - h) for h in range(horizon)], jnp.int32)
    return jnp.sum(tokens_H.astype(jnp.int32) * powers_H, dtype=jnp.int32)


def _one_model(key, *, vocab_size, horizon, log_c_min, log_c_max, low_temperature):
    conc_key, model_key, sample_key = jax.random.split(key, 3)
    dtype = jnp.zeros(()).dtype
    concentration = jnp.exp(jax.random.uniform(conc_key, (), dtype, log_c_min, log_c_max))
    model = autoregressive.tabular_ar(
        model_key, vocab_size=vocab_size, horizon=horizon, concentration=concentration
    )
    _, logp_S = autoregressive.enumerate_sequences(model)
    mask_S = autoregressive.argmax_set(logp_S)

    def ok(tokens_H):
        return mask_S[_sequence_index(tokens_H, vocab_size)]

    return {
        "concentration": concentration,
        "p_star": jnp.exp(jnp.max(logp_S)),
        "unique": jnp.sum(mask_S, dtype=jnp.int32) == 1,
        "greedy_ok": ok(decoding.greedy(model)),
        "beam2_ok": ok(decoding.beam_search(model, 2)[0][0]),
        "beam4_ok": ok(decoding.beam_search(model, 4)[0][0]),
        "lowtemp_ok": ok(
            decoding.sample(model, 1, key=sample_key, temperature=low_temperature)[0][0]
        ),
    }


@functools.partial(
    jax.jit,
    static_argnames=("vocab_size", "horizon", "log_c_min", "log_c_max", "low_temperature"),
)
def _cell_outcomes(keys_M, **static):
    return jax.vmap(functools.partial(_one_model, **static))(keys_M)


def run_unit(cfg: Config, vocab_size: int, horizon: int, key: jax.Array) -> pd.DataFrame:
    """One row per random model of the ``(V, H)`` cell."""
    out = _cell_outcomes(
        jax.random.split(key, cfg.models_per_cell),
        vocab_size=vocab_size,
        horizon=horizon,
        log_c_min=math.log(cfg.concentration_min),
        log_c_max=math.log(cfg.concentration_max),
        low_temperature=cfg.low_temperature,
    )
    host = {k: np.asarray(v) for k, v in out.items()}
    frame = {
        "V": np.full(cfg.models_per_cell, vocab_size),
        "H": np.full(cfg.models_per_cell, horizon),
        "concentration": host["concentration"].astype(np.float64),
        "p_star": host["p_star"].astype(np.float64),
        "unique": host["unique"].astype(np.int64),
    }
    frame.update({f"{m}_ok": host[f"{m}_ok"].astype(np.int64) for m in _METHODS})
    return pd.DataFrame(frame)


def tightness_greedy_ok(eta: float) -> tuple[bool, float]:
    """Whether greedy returns the argmax of the Prop 3.1 tightness instance, and ``pi(y*)``."""
    model = ar_instances.greedy_tightness_instance(eta)
    _, logp_S = autoregressive.enumerate_sequences(model)
    mask_S = autoregressive.argmax_set(logp_S)
    tokens_H = decoding.greedy(model)
    return bool(mask_S[_sequence_index(tokens_H, model.vocab_size)]), float(jnp.exp(logp_S.max()))


_row = functools.partial(io.summary_row, NAME)


def summary_rows(table: pd.DataFrame, cfg: Config) -> list[dict]:
    """The checks (a)-(d) of the module docstring."""
    confident = table[(table.unique == 1) & (table.p_star > 0.5)]
    below = table[table.p_star <= 0.5]
    rows = []
    count = len(confident)
    rate = float(confident.greedy_ok.mean()) if count else math.nan
    rows.append(
        _row(
            f"greedy success over {count} models with unique argmax and pi(y*) > 1/2 "
            f"(need >= {cfg.min_confident_models})",
            "1",
            rate,
            verdict="pass" if rate == 1.0 and count >= cfg.min_confident_models else "fail",
        )
    )
    fails = int((below.greedy_ok == 0).sum())
    below_rate = float(below.greedy_ok.mean()) if len(below) else math.nan
    rows.append(
        _row(
            f"greedy success rate over {len(below)} models with pi(y*) <= 1/2 "
            f"({fails} failures; predicted: failures exist)",
            "< 1",
            below_rate,
            verdict="info" if fails > 0 else "fail",
        )
    )
    ok, p_star = tightness_greedy_ok(cfg.tightness_eta)
    rows.append(
        _row(
            f"greedy success on the tightness instance (eta={cfg.tightness_eta:g}, "
            f"pi(y*)={p_star:.4g})",
            "0",
            float(ok),
            verdict="fail" if ok else "pass",
        )
    )
    for method, label in (("beam4", "beam search (width 4)"), ("lowtemp", "low-temp sample")):
        col = below[f"{method}_ok"]
        rows.append(
            _row(
                f"{label} success rate over {len(below)} models with pi(y*) <= 1/2"
                + (f" (T={cfg.low_temperature:g})" if method == "lowtemp" else ""),
                "< 1",
                float(col.mean()) if len(col) else math.nan,
                verdict="info",
            )
        )
    return rows


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``units/V=*_H=*.csv``, ``metrics.csv`` (per model), ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    root = jax.random.key(cfg.seed)
    frames = [
        io.cached_unit(
            out_dir,
            f"V={v}_H={h}",
            lambda i=i, v=v, h=h: run_unit(cfg, v, h, jax.random.fold_in(root, i)),
        )
        for i, (v, h) in enumerate(cfg.grid)
    ]
    io.finalize_metrics(out_dir, frames)
    io.write_summary(out_dir, summary_rows(pd.concat(frames, ignore_index=True), cfg))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S2 — Prop 3.1: greedy decoding returns y* when pi(y*) > 1/2",
        presets=PRESETS,
        run=run,
    )
)
