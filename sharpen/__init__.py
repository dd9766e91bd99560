"""sharpen: self-improvement by sharpening, as tested JAX code.

Public API of the exact, finite-response core (Huang et al., ICLR 2025). Implementation modules
are private in spirit; import from here so internals can move.
"""

from sharpen import autoregressive, decoding, mode_finder
from sharpen.autoregressive import (
    ARModel,
    enumerate_sequences,
    linear_softmax_ar,
    sequence_logprob,
    tabular_ar,
)
from sharpen.best_of_n import (
    AdaptiveBoN,
    adaptive_best_of_n,
    adaptive_bon_law,
    best_of_n,
    best_of_n_batch,
    bon_law,
)
from sharpen.coverage import c_cov, c_cov_bar, c_cov_p, concentrability, concentrability_beta
from sharpen.mode_finder import ModeResult, find_modes
from sharpen.rewards import (
    SELF_REWARDS,
    answer_probability,
    length_normalized_log_likelihood,
    log_likelihood,
    sequence_log_likelihood,
)
from sharpen.sampling import sample_from_logprobs, sample_prompts, sample_responses
from sharpen.sft import (
    bon_counts_from_law,
    collect_adaptive_bon_data,
    collect_bon_data,
    counts_from_pairs,
    finite_class_mle,
    product_class_mle,
    tabular_mle,
)
from sharpen.targets import argmax_mask, set_mass, sharpening_error, target_mass

__all__ = [
    "SELF_REWARDS",
    "ARModel",
    "AdaptiveBoN",
    "ModeResult",
    "adaptive_best_of_n",
    "adaptive_bon_law",
    "answer_probability",
    "argmax_mask",
    "autoregressive",
    "best_of_n",
    "best_of_n_batch",
    "bon_counts_from_law",
    "bon_law",
    "c_cov",
    "c_cov_bar",
    "c_cov_p",
    "collect_adaptive_bon_data",
    "collect_bon_data",
    "concentrability",
    "concentrability_beta",
    "counts_from_pairs",
    "decoding",
    "enumerate_sequences",
    "find_modes",
    "finite_class_mle",
    "length_normalized_log_likelihood",
    "linear_softmax_ar",
    "log_likelihood",
    "mode_finder",
    "product_class_mle",
    "sample_from_logprobs",
    "sample_prompts",
    "sample_responses",
    "sequence_log_likelihood",
    "sequence_logprob",
    "set_mass",
    "sharpening_error",
    "tabular_ar",
    "tabular_mle",
    "target_mass",
]
