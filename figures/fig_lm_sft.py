"""SFT-Sharpening of char LMs (paper Figs. 7–9 and Table 1; EXPERIMENTS §6, §10.4).

Reads ``lm_sft/metrics.csv`` (eval curves: task, method, N, seed, step, accuracy, acc_lift,
loglik_lift, entropy, pass@k), ``lm_sft/reference.csv`` (base greedy, BoN@N, pass@k) and
``lm_sft/amortization.csv``. Panels, for the first task:

(a) % accuracy lift over base greedy vs training step, one colour per corpus N, mean ± std
    over seeds (solid LoRA, dashed full); dotted lines: inference-time BoN@N (Fig. 7a / 9a);
(b) likelihood lift over base greedy (nats, under the frozen base) vs step (Fig. 7b / 9b);
(c) mean per-token entropy of the fine-tuned model's samples vs step;
(d) pass@k of the final fine-tuned models and of the base model (diversity collapse?);
(e) accuracy vs total decode tokens: base BoN@N vs SFT (corpus generation + one sample per
    eval prompt) at each corpus N (amortization);
(f) mean mass ``pi(y*|x)`` of the fine-tuned model on the base model's certified exact mode
    ``y*`` vs step (``mode_mass``; step 0 is the base model; char models only, else empty).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from figures import _plot
from figures.registry import FigureSpec, register

NAME = "fig_lm_sft"
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
_STYLES = {"lora": "-", "full": "--"}


def _band(ax, sub, column, color, style, label):
    g = sub.groupby("step")[column]
    mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
    ax.plot(mean.index, mean.values, style, color=color, label=label, marker="o", ms=3)
    ax.fill_between(mean.index, mean - std, mean + std, color=color, alpha=0.15, lw=0)


def make(runs_dir: Path, out_dir: Path) -> list[Path]:
    """Draw ``out_dir/fig_lm_sft.png`` from ``runs_dir/lm_sft``."""
    metrics = _plot.read(runs_dir, "lm_sft", "metrics.csv")
    reference = _plot.read(runs_dir, "lm_sft", "reference.csv")
    amort = _plot.read(runs_dir, "lm_sft", "amortization.csv")
    task = metrics["task"].iloc[0]
    metrics = metrics[metrics["task"] == task]
    ref = reference[reference["task"] == task]
    amort = amort[amort["task"] == task]
    greedy = ref[ref["rule"] == "greedy"].iloc[0]
    bon = ref[ref["rule"] == "bon_sum"].set_index("num_samples")
    ns = sorted(metrics["N"].unique())
    color = {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(ns)}

    fig, grid = _plot.plt.subplots(2, 3, figsize=(17, 8.4))
    axes = grid.ravel()
    ax_acc, ax_lik, ax_ent, ax_pass, ax_tok, ax_mode = axes
    g_acc, g_lp = float(greedy["accuracy"]), float(greedy["sum_logprob"])
    has_modes = "mode_mass" in metrics and bool(metrics["mode_mass"].notna().any())
    for (method, n), sub in metrics.groupby(["method", "N"], sort=True):
        label = f"SFT {method}, N={n}"
        _band(ax_acc, sub, "accuracy", color[n], _STYLES[method], label)
        _band(ax_lik, sub, "loglik_lift", color[n], _STYLES[method], label)
        _band(ax_ent, sub, "entropy", color[n], _STYLES[method], label)
        if has_modes:
            _band(ax_mode, sub, "mode_mass", color[n], _STYLES[method], label)
    for n in ns:
        ax_acc.axhline(bon.loc[n, "accuracy"], color=color[n], ls=":", lw=1, label=f"base BoN@{n}")
        ax_lik.axhline(bon.loc[n, "sum_logprob"] - g_lp, color=color[n], ls=":", lw=1)
    ax_acc.axhline(bon.loc[1, "accuracy"], color="k", ls=":", lw=1, label="base T=1")
    ax_acc.axhline(g_acc, color="grey", ls="-", lw=1, label="base greedy")
    ax_lik.axhline(bon.loc[1, "sum_logprob"] - g_lp, color="k", ls=":", lw=1, label="base T=1")
    ax_lik.axhline(0.0, color="grey", lw=1, label="base greedy")
    ax_acc.set(
        xlabel="training step",
        ylabel="T=1 accuracy (held-out prompts)",
        title="(a) accuracy of one T=1 sample",
    )
    if g_acc > 0:  # the paper's axis: % lift over base greedy
        lift = ax_acc.secondary_yaxis(
            "right",
            functions=(lambda a: 100 * (a - g_acc) / g_acc, lambda x: g_acc * (1 + x / 100)),
        )
        lift.set_ylabel("% lift over base greedy")
    ax_lik.set(
        xlabel="training step",
        ylabel="log pi_base(y|x) - log pi_base(greedy) (nats)",
        title="(b) likelihood under the frozen base",
    )
    ax_ent.set(
        xlabel="training step",
        ylabel="mean per-token entropy (nats)",
        title="(c) entropy of the tuned model",
    )

    ks = sorted(int(c.split("@")[1]) for c in metrics.columns if c.startswith("pass@"))
    last = metrics[metrics["step"] == metrics["step"].max()]
    for (method, n), sub in last.groupby(["method", "N"], sort=True):
        vals = [sub[f"pass@{k}"].mean() for k in ks]
        ax_pass.plot(
            ks,
            vals,
            _STYLES[method],
            color=color[n],
            marker="o",
            ms=3,
            label=f"SFT {method}, N={n}",
        )
    base_pass = ref[ref["rule"] == "pass_at_n"].set_index("num_samples")["accuracy"]
    ax_pass.plot(base_pass.index, base_pass.values, "k:", marker="s", ms=3, label="base")
    ax_pass.set(xscale="log", xlabel="k", ylabel="pass@k", title="(d) pass@k, final checkpoint")

    bon_ns = np.array(sorted(bon.index))
    # num_eval_prompts x (mean tokens of one base sample): BoN@N decodes N times that.
    per_n = float(amort["bon_total_decode_tokens"].iloc[0] / amort["N"].iloc[0])
    ax_tok.plot(
        per_n * bon_ns,
        bon.loc[bon_ns, "accuracy"],
        "k-o",
        ms=3,
        label="base BoN@N (inference only)",
    )
    for method, sub in amort.groupby("method", sort=True):
        sub = sub.sort_values("N")
        ax_tok.plot(
            sub["sft_total_decode_tokens"],
            sub["sft_accuracy"],
            _STYLES[method] + "s",
            color="tab:red",
            ms=4,
            label=f"SFT {method} (corpus + 1 sample)",
        )
        for r in sub.itertuples():
            ax_tok.annotate(f"N={r.N}", (r.sft_total_decode_tokens, r.sft_accuracy), fontsize=7)
    ax_tok.axhline(g_acc, color="grey", ls=":", lw=1, label="base greedy")
    ax_tok.set(
        xscale="log",
        xlabel="total decode tokens (eval set + SFT corpus)",
        ylabel="accuracy",
        title="(e) amortization",
    )
    if has_modes:
        ax_mode.set(
            xlabel="training step",
            ylabel="mean pi(y*|x) over certified prompts",
            title="(f) mass on the base model's exact mode y*",
        )
    else:
        ax_mode.text(0.5, 0.5, "no certified modes", ha="center", va="center")
        ax_mode.set_axis_off()
    for ax in axes if has_modes else axes[:5]:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(f"SFT-Sharpening on {task} (held-out prompts; mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    return _plot.save(fig, out_dir, NAME)


SPEC = register(FigureSpec(name=NAME, requires=("lm_sft",), make=make))

if __name__ == "__main__":
    make(Path(sys.argv[1]), Path(sys.argv[2]))
