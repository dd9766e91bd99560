"""S10 — Prop E.1: the sequence argmax of a linear softmax model encodes a maximum cut.

Instance: :func:`theory.ar_instances.maxcut_instance` on a random graph ``G`` with an odd number
of edges on ``n = H - 2`` vertices (edge probability 1/2; one pair is flipped when the count
comes out even). The first ``n`` tokens are uniform, ``y_{H-1}`` leans to ``+1`` iff the prefix
cuts more than ``|E|/2`` edges (scale ``kappa``), and ``y_H = +1`` is near-certain after
``y_{H-1} = +1``. So the sequence argmax set is ``{(c, +1, +1) : c a maximum cut}`` and
``pi(y*) ~ #maxcuts / 2^n`` (THEORY §4.6, §5.3 S10).

Per graph: the brute-force maximum cut (all ``2^n`` assignments, :func:`cut_values`); the argmax
set by exact enumeration of all ``2^H`` sequences (skipped above ``enum_max_horizon``) and by the
exact mode finder :func:`sharpen.find_modes` (its ``expansions`` against ``2^H``); greedy decoding
with the lowest-index tie-break (predicted to fail: the all-``-1`` prefix has cut 0) and with
random tie-breaks over ``greedy_keys`` keys (predicted success ``#maxcuts / 2^n``: the uniform
prefix is a uniformly random assignment); beam search at each width (deterministic, ties to the
lowest prefix); best-of-N by sequence log-probability, ``bon_trials`` runs for each ``N`` (one
vmapped batch of ``max(bon_ns)`` draws per run; best-of-N on the first ``N`` draws succeeds iff one
of them is in the argmax set, since the argmax set is exactly the set of largest log-prob) against
the exact ``1 - (1 - pi(y*))^N``.

Checks (``summary.csv``): argmax = a maximum cut on every graph; mode finder = enumeration on
every enumerated graph; best-of-N Monte Carlo vs the exact law (max |z| <= 4); random-tie greedy
vs ``#maxcuts / 2^n`` (max |z| <= 4); info: ``expansions / 2^H`` at the largest H, fixed-tie
greedy success rate.

Command: ``sharpen run s10 [--preset quick|full]``; feeds ``figures/fig_maxcut.py``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from experiments import io
from experiments.registry import ExperimentSpec, register
from sharpen import decoding
from sharpen.autoregressive import argmax_set, enumerate_sequences
from sharpen.mode_finder import find_modes
from theory import ar_instances

NAME = "s10"


@dataclasses.dataclass(frozen=True)
class Config:
    """Random MAX-CUT reductions per horizon ``H`` (THEORY §4.6 Prop E.1, §5.3 S10)."""

    horizons: tuple[int, ...] = (6, 8, 10, 12)
    graphs_per_horizon: int = 5
    edge_prob: float = 0.5
    kappa: float = 0.05
    greedy_keys: int = 200
    beam_widths: tuple[int, ...] = (1, 2, 4, 8, 16)
    bon_ns: tuple[int, ...] = (1, 4, 16, 64, 256, 1024)
    bon_trials: int = 100
    enum_max_horizon: int = 14
    node_budget: int = 10**6
    seed: int = 0

    def __post_init__(self):
        hs = self.horizons
        if not hs or any(h < 4 for h in hs) or list(hs) != sorted(set(hs)):
            raise ValueError(f"horizons must be non-empty, ascending, distinct and >= 4, got {hs}")
        if self.graphs_per_horizon < 1:
            raise ValueError(f"graphs_per_horizon must be >= 1, got {self.graphs_per_horizon}")
        if not 0 < self.edge_prob < 1:
            raise ValueError(f"edge_prob must lie in (0, 1), got {self.edge_prob}")
        if not self.kappa > 0:
            raise ValueError(f"kappa must be > 0, got {self.kappa}")
        if self.greedy_keys < 1:
            raise ValueError(f"greedy_keys must be >= 1, got {self.greedy_keys}")
        ws = self.beam_widths
        if not ws or any(w < 1 for w in ws) or list(ws) != sorted(set(ws)):
            raise ValueError(f"beam_widths must be non-empty, ascending, distinct, >= 1, got {ws}")
        ns = self.bon_ns
        if not ns or any(n < 1 for n in ns) or list(ns) != sorted(set(ns)):
            raise ValueError(f"bon_ns must be non-empty, ascending, distinct, >= 1, got {ns}")
        if self.bon_trials < 1:
            raise ValueError(f"bon_trials must be >= 1, got {self.bon_trials}")
        if not 4 <= self.enum_max_horizon <= 20:
            raise ValueError(f"enum_max_horizon must lie in [4, 20], got {self.enum_max_horizon}")
        if self.node_budget < 1:
            raise ValueError(f"node_budget must be >= 1, got {self.node_budget}")


def smoke() -> Config:
    """CI-sized: H = 6, 8, two graphs each, N up to 64.

    ``sharpen run s10 --preset smoke`` (~6 s); feeds ``figures/fig_maxcut.py``.
    """
    return Config(
        horizons=(6, 8),
        graphs_per_horizon=2,
        greedy_keys=50,
        beam_widths=(2,),
        bon_ns=(1, 8, 64),
        bon_trials=50,
    )


def quick() -> Config:
    """``sharpen run s10`` (``sharpen repro`` default): H = 6..12, 5 graphs each (20), ~22 s on 2 CPU cores.

    Feeds ``figures/fig_maxcut.py``.
    """
    return Config()


def full() -> Config:
    """``sharpen run s10 --preset full``: H = 6..16, 10 graphs each, N up to 4096, 400 trials.

    Enumeration stops at H = 14; H = 16 relies on the exact mode finder. Minutes on CPU.
    Feeds ``figures/fig_maxcut.py``.
    """
    return Config(
        horizons=(6, 8, 10, 12, 14, 16),
        graphs_per_horizon=10,
        greedy_keys=1000,
        bon_ns=(1, 4, 16, 64, 256, 1024, 4096),
        bon_trials=400,
    )


PRESETS = {"smoke": smoke, "quick": quick, "full": full}


def random_odd_graph(rng: np.random.Generator, num_vertices: int, edge_prob: float) -> np.ndarray:
    """[n, n] symmetric 0/1 adjacency, zero diagonal, odd edge count (one pair flipped if even)."""
    iu, ju = np.triu_indices(num_vertices, k=1)
    upper = rng.random(iu.size) < edge_prob
    if upper.sum() % 2 == 0:
        flip = rng.integers(iu.size)
        upper[flip] = not upper[flip]
    adj = np.zeros((num_vertices, num_vertices), np.int64)
    adj[iu[upper], ju[upper]] = 1
    return adj + adj.T


def all_assignments(num_vertices: int) -> np.ndarray:
    """[2^n, n] int32 every 0/1 assignment, lexicographic (vertex 0 most significant)."""
    idx = np.arange(1 << num_vertices)[:, None]
    return ((idx >> np.arange(num_vertices - 1, -1, -1)[None]) & 1).astype(np.int32)


def _cuts(adjacency: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(ar_instances.cut_values(adjacency, jnp.asarray(tokens)))).astype(int)


def _rows_set(tokens: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in row) for row in np.asarray(tokens)}


def _in_argmax(adjacency: np.ndarray, max_cut: int, tokens_SxH: np.ndarray) -> np.ndarray:
    """[S] bool: the sequence is (a maximum cut, +1, +1) (ids 1, 1)."""
    n = adjacency.shape[0]
    tail_ok = (tokens_SxH[:, n] == 1) & (tokens_SxH[:, n + 1] == 1)
    return tail_ok & (_cuts(adjacency, tokens_SxH[:, :n]) == max_cut)


def _greedy_random_batch(model, keys_K):
    return jax.vmap(lambda k: decoding.greedy_random_ties(model, key=k))(keys_K)


def _bon_draws(model, keys_T, num):
    return jax.vmap(lambda k: decoding.sample(model, num, key=k)[0])(keys_T)


def run_graph(cfg: Config, horizon: int, graph: int, key: jax.Array) -> dict:
    """Every measurement of the module docstring on one random graph."""
    n = horizon - 2
    rng = np.random.default_rng([cfg.seed, horizon, graph])
    adj = random_odd_graph(rng, n, cfg.edge_prob)
    model = ar_instances.maxcut_instance(adj, kappa=cfg.kappa)
    cuts = _cuts(adj, all_assignments(n))
    max_cut = int(cuts.max())
    maxcut_tokens = all_assignments(n)[cuts == max_cut]
    expected = _rows_set(np.concatenate([maxcut_tokens, np.ones((len(maxcut_tokens), 2), int)], 1))
    num_maxcuts = len(maxcut_tokens)

    modes = find_modes(model, node_budget=cfg.node_budget)
    mode_set = _rows_set(modes.sequences)
    pi_star = float(len(modes.sequences) * np.exp(modes.logprob))
    enumerated = horizon <= cfg.enum_max_horizon
    if enumerated:
        tokens_SxH, logp_S = enumerate_sequences(model)
        mask_S = np.asarray(argmax_set(logp_S))
        enum_set = _rows_set(np.asarray(tokens_SxH)[mask_S])
        argmax_is_maxcut = enum_set == expected
        modes_match = float(enum_set == mode_set)
        pi_star = float(np.exp(np.asarray(logp_S, np.float64)[mask_S]).sum())
    else:
        argmax_is_maxcut = mode_set == expected
        modes_match = float("nan")

    k_greedy, k_bon = jax.random.split(key)
    greedy_ok = bool(_in_argmax(adj, max_cut, np.asarray(decoding.greedy(model))[None])[0])
    picks_KxH = np.asarray(_greedy_random_batch(model, jax.random.split(k_greedy, cfg.greedy_keys)))
    greedy_rate = float(_in_argmax(adj, max_cut, picks_KxH).mean())

    row = {
        "H": horizon,
        "graph": graph,
        "num_vertices": n,
        "num_edges": int(adj.sum()) // 2,
        "max_cut": max_cut,
        "num_maxcuts": num_maxcuts,
        "pi_star": pi_star,
        "coverage_approx": num_maxcuts / 2.0**n,
        "argmax_is_maxcut": float(argmax_is_maxcut),
        "enumerated": float(enumerated),
        "modes_match_enumeration": modes_match,
        "modes_exact": float(modes.exact),
        "num_modes": len(modes.sequences),
        "expansions": modes.expansions,
        "num_sequences": 2**horizon,
        "greedy_success": float(greedy_ok),
        "greedy_random_rate": greedy_rate,
        "greedy_random_predicted": num_maxcuts / 2.0**n,
        "greedy_keys": cfg.greedy_keys,
        "bon_trials": cfg.bon_trials,
    }
    for w in cfg.beam_widths:
        beams_WxH, _ = decoding.beam_search(model, w)
        row[f"beam_w={w}"] = float(_in_argmax(adj, max_cut, np.asarray(beams_WxH)[:1])[0])
    n_max = max(cfg.bon_ns)
    draws = np.asarray(_bon_draws(model, jax.random.split(k_bon, cfg.bon_trials), n_max))
    hit_TxN = _in_argmax(adj, max_cut, draws.reshape(-1, horizon)).reshape(cfg.bon_trials, n_max)
    first_hit_T = np.where(hit_TxN.any(1), hit_TxN.argmax(1), n_max)  # best-of-N wins iff < N
    for num in cfg.bon_ns:
        row[f"bon_mc_N={num}"] = float(np.mean(first_hit_T < num))
        row[f"bon_exact_N={num}"] = float(-np.expm1(num * np.log1p(-pi_star)))
    return row


def run_unit(cfg: Config, horizon: int, key: jax.Array) -> pd.DataFrame:
    """All graphs at one horizon."""
    return pd.DataFrame(
        [
            run_graph(cfg, horizon, g, jax.random.fold_in(key, g))
            for g in range(cfg.graphs_per_horizon)
        ]
    )


_row = functools.partial(io.summary_row, NAME)


def _max_z(measured: np.ndarray, exact: np.ndarray, trials: np.ndarray) -> float:
    sigma = np.sqrt(np.maximum(exact * (1.0 - exact), 1e-12) / trials)
    return float(np.max(np.abs(measured - exact) / sigma))


def summary_rows(table: pd.DataFrame, cfg: Config) -> list[dict]:
    """The checks of the module docstring."""
    total = len(table)
    ok = int(table.argmax_is_maxcut.sum())
    rows = [
        _row(
            f"graphs whose sequence argmax set = {{(max cut, +1, +1)}} (of {total})",
            f"{total} (all)",
            ok,
            verdict="pass" if ok == total else "fail",
        )
    ]
    enum = table[table.enumerated == 1.0]
    agree = int(enum.modes_match_enumeration.sum())
    exact_all = bool((table.modes_exact == 1.0).all())
    rows.append(
        _row(
            f"graphs where find_modes (exact=True) = enumerated argmax set (of {len(enum)})",
            f"{len(enum)} (all)",
            agree,
            verdict="pass" if agree == len(enum) and exact_all and len(enum) > 0 else "fail",
        )
    )
    mc = np.concatenate([table[f"bon_mc_N={n}"].to_numpy(float) for n in cfg.bon_ns])
    ex = np.concatenate([table[f"bon_exact_N={n}"].to_numpy(float) for n in cfg.bon_ns])
    z_bon = _max_z(mc, ex, float(cfg.bon_trials))
    rows.append(
        _row(
            f"best-of-N success vs exact 1-(1-pi(y*))^N, max |z| over {len(mc)} (graph, N) "
            f"cells ({cfg.bon_trials} trials)",
            "<= 4",
            z_bon,
            verdict="pass" if z_bon <= 4 else "fail",
        )
    )
    z_greedy = _max_z(
        table.greedy_random_rate.to_numpy(float),
        table.greedy_random_predicted.to_numpy(float),
        float(cfg.greedy_keys),
    )
    rows.append(
        _row(
            f"random-tie greedy success vs #maxcuts/2^(H-2), max |z| over {total} graphs "
            f"({cfg.greedy_keys} keys)",
            "<= 4",
            z_greedy,
            verdict="pass" if z_greedy <= 4 else "fail",
        )
    )
    top = table[table.H == table.H.max()]
    ratio = float((top.expansions / top.num_sequences).mean())
    rows.append(
        _row(
            f"find_modes expansions / 2^H at H={int(top.H.iloc[0])} (mean over graphs; "
            f"mean expansions {top.expansions.mean():.4g})",
            "Theta(1): exponential in H",
            ratio,
            verdict="info",
        )
    )
    rows.append(
        _row(
            "fixed-tie (lowest index) greedy success rate over all graphs",
            "0 (all -1 prefix has cut 0)",
            float(table.greedy_success.mean()),
            verdict="info",
        )
    )
    return rows


def run(cfg: Config, out_dir: Path) -> None:
    """Write ``config.json``, ``units/H=*.csv``, ``metrics.csv`` (per graph), ``summary.csv``."""
    out_dir = io.prepare_run_dir(out_dir, cfg, experiment=NAME)
    key = jax.random.key(cfg.seed)
    frames = [
        io.cached_unit(
            out_dir, f"H={h:02d}", lambda h=h: run_unit(cfg, h, jax.random.fold_in(key, h))
        )
        for h in cfg.horizons
    ]
    io.finalize_metrics(out_dir, frames)
    io.write_summary(out_dir, summary_rows(pd.concat(frames, ignore_index=True), cfg))


SPEC = register(
    ExperimentSpec(
        name=NAME,
        title="S10 — Prop E.1: sequence argmax = maximum cut; greedy/beam/BoN/mode finder vs H",
        presets=PRESETS,
        run=run,
    )
)
