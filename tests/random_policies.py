"""Random tabular policies for tests, drawn so that all share one compiled sampler."""

import jax
import jax.numpy as jnp


def random_logp(key, num_prompts: int, num_responses: int, concentration: float = 1.0):
    """Rows of log Dirichlet(concentration) draws, [num_prompts <= 64, num_responses <= 128].

    Log-normalized log-gammas sliced from one fixed [64, 128] block: every instance in the file
    then shares one compiled sampler (each new ``jax.random.dirichlet`` shape costs seconds).
    """
    log_g = jax.random.loggamma(key, jnp.full((64, 128), concentration))
    return jax.nn.log_softmax(log_g[:num_prompts, :num_responses], axis=-1)


def tied_logp(key, num_prompts: int, num_responses: int, copies: int = 2):
    """Every probability level appears ``copies`` times, so every argmax set has ``copies``."""
    half = random_logp(key, num_prompts, num_responses // copies)
    return jnp.repeat(half, copies, axis=-1) - jnp.log(float(copies))
