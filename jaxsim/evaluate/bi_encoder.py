"""A bi-encoder regressor for the noun-interaction task ([BiLRP] §4.3; METHODS.md §1.4.2, A7).

``pred = <phi(a), phi(b)>`` with phi = encoder + pooling (QKV in the paper), trained with MSE on
a per-pair target. The dot product, not the cosine: a cosine cannot reach counts above 1 (A7).
Reuses the classifier trainer's pieces (``jaxsim.train``): the AdamW warm-up/decay optimizer, the
``TrainState`` pytree, the deterministic length-grouped epoch order and the orbax checkpoints.
Everything random is a function of ``seed``: epoch order (``epoch_order(seed, epoch)``) and the
QKV init (``init_qkv_params(seed)``); there is no dropout.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.convert.train_checkpoint import checkpoint_manager
from jaxsim.errors import JaxsimError
from jaxsim.models.pooling import init_qkv_params
from jaxsim.text import Encoded, bucket_length, pad_batch
from jaxsim.train.checkpoint import restore_state, save_state
from jaxsim.train.data import epoch_order
from jaxsim.train.optim import make_optimizer
from jaxsim.train.step import TrainState, apply_gradients, init_state

if TYPE_CHECKING:
    from jaxsim.model import Model


@dataclasses.dataclass(frozen=True)
class BiEncoderConfig:
    """Regression fine-tuning settings. ``max_steps`` caps the run (the schedule still spans
    ``epochs``); ``pooling`` is the pooling trained on top of the encoder. ``match_scale``
    (QKV only): scale the initial value projection by ``c`` so that the mean initial dot product
    over the first 256 pairs equals the mean target (MiniLM's raw dot products are ~10x the
    noun counts; without it most of a short run goes into shrinking them)."""

    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float | None = 1.0
    pooling: str = "qkv"
    match_scale: bool = True
    seed: int = 0
    max_steps: int | None = None
    group: int = 50


def _pair_batch(enc_a: Sequence[Encoded], enc_b: Sequence[Encoded], targets: np.ndarray,
                index: np.ndarray, batch_size: int, max_length: int, pad_id: int) -> tuple:
    """Rows ``index``, both texts padded to one bucket and to ``batch_size`` rows:
    (ids_a, types_a, mask_a, ids_b, types_b, mask_b: [B, L]; target f32[B]; weight f32[B])."""
    rows_a, rows_b = [enc_a[i] for i in index], [enc_b[i] for i in index]
    length = bucket_length(max(len(e) for e in rows_a + rows_b), max_length)
    a = pad_batch(rows_a, length, batch_size, pad_id)
    b = pad_batch(rows_b, length, batch_size, pad_id)
    target = np.zeros(batch_size, np.float32)
    target[: len(index)] = targets[np.asarray(index)]
    weight = np.zeros(batch_size, np.float32)
    weight[: len(index)] = 1.0
    return (*a, *b, target, weight)


def make_regression_step(config, pooling: str, optimizer):
    """A jitted ``(state, batch) -> (state, {"loss"})`` minimising the weighted MSE of
    ``<phi(a), phi(b)>`` against the target. ``state.params = {"encoder", "pool"}``; donated."""
    from jaxsim.models import pooled_embeddings

    def loss_fn(params, batch):
        ids_a, types_a, mask_a, ids_b, types_b, mask_b, target, weight = batch
        # both texts padded to one bucket: one encoder pass over [2B, L] (half the graph to compile)
        phi = pooled_embeddings(params["encoder"], params["pool"], jnp.concatenate([ids_a, ids_b]),
                                jnp.concatenate([types_a, types_b]), jnp.concatenate([mask_a, mask_b]),
                                config=config, pooling=pooling)
        phi_a, phi_b = phi[: ids_a.shape[0]], phi[ids_a.shape[0]:]
        err = (phi_a * phi_b).sum(-1) - target
        return (err * err * weight).sum() / jnp.maximum(weight.sum(), 1.0)

    def step(state: TrainState, batch: tuple):
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
        return apply_gradients(state, grads, optimizer), {"loss": loss}

    return jax.jit(step, donate_argnums=0)


def _optimizer(cfg: BiEncoderConfig, total_steps: int):
    return make_optimizer(cfg.learning_rate, total_steps, cfg.warmup_ratio, cfg.weight_decay, cfg.clip_norm)


def train_bi_encoder(model: Model, pairs: Sequence[tuple[str, str]], targets: np.ndarray,
                     cfg: BiEncoderConfig,
                     out_dir: str | Path | None = None, progress: bool = True):
    """Fine-tune ``model``'s encoder and a ``cfg.pooling`` head on ``pairs`` -> (model with the
    trained params and pooling, history list of {"epoch", "step", "loss"}). With ``out_dir``,
    the final train state is saved there as an orbax checkpoint (``load_bi_encoder`` reads it)."""
    from tqdm.auto import tqdm

    targets = np.asarray(targets, np.float32)
    enc_a = [model.tokenizer.encode(a) for a, _ in pairs]
    enc_b = [model.tokenizer.encode(b) for _, b in pairs]
    lengths = np.array([max(len(x), len(y)) for x, y in zip(enc_a, enc_b, strict=True)])
    steps_per_epoch = math.ceil(len(pairs) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    optimizer = _optimizer(cfg, total)
    pool = init_qkv_params(model.config.hidden_size, cfg.seed) if cfg.pooling == "qkv" else None
    if pool is not None and cfg.match_scale:
        probe = dataclasses.replace(model, pooling="qkv", pool_params=pool)
        dots = predict(probe, list(pairs[:256]))
        c = math.sqrt(max(float(targets[:256].mean()), 1e-3) / max(float(dots.mean()), 1e-3))
        pool = {**pool, "value": jax.tree.map(lambda v: v * c, pool["value"])}
    state = init_state({"encoder": model.params, "pool": pool}, optimizer)
    step = make_regression_step(model.config, cfg.pooling, optimizer)
    history: list[dict] = []
    started = time.perf_counter()
    done = False
    for epoch in range(cfg.epochs):
        order = epoch_order(lengths, cfg.batch_size, cfg.seed, epoch, cfg.group)
        losses = []
        for index in tqdm(order, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress):
            if cfg.max_steps is not None and int(state.step) >= cfg.max_steps:
                done = True
                break
            batch = _pair_batch(enc_a, enc_b, targets, index, cfg.batch_size,
                                model.tokenizer.max_length, model.tokenizer.pad_token_id)
            state, metrics = step(state, tuple(jnp.asarray(x) for x in batch))
            losses.append(float(metrics["loss"]))
        history.append({"epoch": epoch + 1, "step": int(state.step), "train_loss": float(np.mean(losses)),
                        "seconds": round(time.perf_counter() - started, 1)})
        if done:
            break
    if out_dir is not None:
        manager = checkpoint_manager(Path(out_dir) / "checkpoints", max_to_keep=1)
        save_state(manager, state, {"config": dataclasses.asdict(cfg), "total_steps": total,
                                    "history": history})
        manager.close()
    trained = dataclasses.replace(model, params=state.params["encoder"], pooling=cfg.pooling,
                                  pool_params=state.params["pool"], normalize=False)
    return trained, history


def load_bi_encoder(model: Model, out_dir: str | Path):
    """The bi-encoder saved by ``train_bi_encoder(..., out_dir)`` on top of ``model`` (same base)."""
    manager = checkpoint_manager(Path(out_dir) / "checkpoints", max_to_keep=1)
    try:
        step = manager.latest_step()
        if step is None:
            raise JaxsimError(f"{out_dir} holds no bi-encoder checkpoint")
        saved = dict(manager.restore(step, args=_progress_only())["progress"])
        cfg = BiEncoderConfig(**saved["config"])
        pool = init_qkv_params(model.config.hidden_size, cfg.seed) if cfg.pooling == "qkv" else None
        state, _ = restore_state(manager, {"encoder": model.params, "pool": pool},
                                 _optimizer(cfg, saved["total_steps"]), step)
    finally:
        manager.close()
    trained = dataclasses.replace(model, params=state.params["encoder"], pooling=cfg.pooling,
                                  pool_params=state.params["pool"], normalize=False)
    return trained, saved["history"]


def _progress_only():
    import orbax.checkpoint as ocp

    return ocp.args.Composite(progress=ocp.args.JsonRestore())


def predict(model: Model, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
    """``f64[N]`` dot products of the un-normalised pooled embeddings (the regressor's output)."""
    from jaxsim.evaluate.sts import pair_similarities

    return pair_similarities(model, pairs, "dot", batch_size)
