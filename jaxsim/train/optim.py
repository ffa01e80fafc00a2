"""AdamW with linear warm-up and linear decay, BERT fine-tuning style.

``lr(t) = peak * t / warmup`` for ``t < warmup``, then linear to 0 at ``total_steps``. Weight
decay applies to matrices (kernels, embedding tables) only, not to biases or LayerNorm scales
(the Hugging Face ``no_decay`` convention). Gradients are clipped to a global norm first.
"""

from __future__ import annotations

import jax
import optax


def warmup_linear_decay(peak: float, total_steps: int, warmup_steps: int) -> optax.Schedule:
    """``t -> lr``: 0 -> ``peak`` over ``warmup_steps``, then ``peak`` -> 0 at ``total_steps``."""
    warmup_steps = max(int(warmup_steps), 1)
    decay_steps = max(int(total_steps) - warmup_steps, 1)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, warmup_steps), optax.linear_schedule(peak, 0.0, decay_steps)],
        [warmup_steps],
    )


def decay_mask(params) -> object:
    """True for leaves that get weight decay: every array with two or more dimensions."""
    return jax.tree.map(lambda leaf: leaf.ndim >= 2, params)


def make_optimizer(
    learning_rate: float, total_steps: int, warmup_ratio: float = 0.1, weight_decay: float = 0.01,
    clip_norm: float | None = 1.0,
) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW on the warm-up/decay schedule."""
    schedule = warmup_linear_decay(learning_rate, total_steps, round(warmup_ratio * total_steps))
    adamw = optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay, mask=decay_mask)
    if clip_norm is None:
        return adamw
    return optax.chain(optax.clip_by_global_norm(clip_norm), adamw)
