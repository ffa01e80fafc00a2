"""Fine-tuning loop: epochs of jitted train steps, dev evaluation, early stop, orbax resume.

``<out>/`` is a Hugging Face ``BertForSequenceClassification`` folder (``config.json`` with
``id2label``, tokenizer files, ``model.safetensors`` = the params of the best dev accuracy so
far) plus ``checkpoints/`` (orbax, the full train state, for resuming) and ``training.json``
(settings, per-epoch history, best epoch). Everything random is a function of ``seed``: head
init, epoch order (``data.epoch_order``), dropout keys (``fold_in(key(seed), step)``). A resumed
run restores the train state and replays the epoch order, skipping the batches already done,
so it ends with exactly the params of an uninterrupted run.

The step loop is a Python loop over a jitted step: batches change shape with their length
bucket, so a ``lax.scan`` would need one fixed length (all padding to the longest) — on CPU the
per-step dispatch is negligible next to a step, and bucketing saves far more.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.classifier import (
    Classifier,
    encoded_logits,
    save_classifier_weights,
    write_classifier_folder,
)
from jaxsim.convert.train_checkpoint import checkpoint_manager
from jaxsim.errors import JaxsimError
from jaxsim.model import Model, load_model
from jaxsim.models.config import BertConfig
from jaxsim.models.heads import init_head
from jaxsim.text import Encoded, encode_pairs, load_tokenizer
from jaxsim.train.checkpoint import restore_state, save_state
from jaxsim.train.data import PairData, epoch_order, make_batch
from jaxsim.train.optim import make_optimizer
from jaxsim.train.step import TrainState, init_state, make_train_step

#: Settings that change the trajectory: a resumed run must use the same values.
_TRAJECTORY_FIELDS = (
    "epochs", "batch_size", "learning_rate", "warmup_ratio", "weight_decay", "dropout",
    "max_length", "seed", "group", "clip_norm",
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning settings (defaults: a MiniLM-sized cross-encoder on a 2-core CPU).

    patience: stop after this many evaluations without a better dev accuracy (0 = never).
    save_every: also checkpoint every this many steps (an evaluation always checkpoints).
    max_steps: stop (as if interrupted) after this many steps in total; the schedule still
    spans ``epochs``. For tests and time-boxed runs; resume continues from there.
    """

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    max_length: int = 128
    seed: int = 0
    patience: int = 2
    save_every: int = 200
    max_steps: int | None = None
    group: int = 50
    clip_norm: float | None = 1.0
    eval_batch_size: int = 64

    def trajectory(self) -> dict:
        return {k: getattr(self, k) for k in _TRAJECTORY_FIELDS}


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a run did. history: one dict per evaluation (epoch, step, loss, train/dev accuracy)."""

    out_dir: Path
    labels: tuple[str, ...]
    history: list[dict]
    best_accuracy: float
    best_epoch: int
    steps: int
    stopped: str  # "completed" | "early_stop" | "max_steps"
    params: dict = dataclasses.field(repr=False)


@functools.lru_cache(maxsize=8)
def _compiled_step(model_config, learning_rate, total_steps, warmup_ratio, weight_decay, clip_norm, dropout):
    """Optimizer and jitted step per settings: an explicit compile cache, so a resumed run (or a
    second run with equal settings in one process) reuses the compiled step."""
    optimizer = make_optimizer(learning_rate, total_steps, warmup_ratio, weight_decay, clip_norm)
    return optimizer, make_train_step(model_config, optimizer, dropout)


def initial_head(model: Model, num_labels: int, seed: int) -> dict:
    """The model's own head if it has one of the right size, else a new one: the pretrained
    pooler when the checkpoint ships one (as ``from_pretrained`` does), a normal(0.02) classifier."""
    head = model.params.get("head")
    if head is not None and head["classifier"]["kernel"].shape[-1] == num_labels:
        return head
    new = init_head(model.config.hidden_size, num_labels, seed)
    pooler = _pretrained_pooler(model)
    if pooler is not None:
        new["pooler"] = pooler
    return new


def _pretrained_pooler(model: Model) -> dict | None:
    if head := model.params.get("head"):
        return head["pooler"]
    if model.source is None:
        return None
    from jaxsim.convert.checkpoint import read_tensors
    from jaxsim.convert.source import weight_files

    try:
        tensors = read_tensors(weight_files(model.source.model_dir))
    except JaxsimError:
        return None
    for prefix in ("", "bert."):
        weight, bias = tensors.get(f"{prefix}pooler.dense.weight"), tensors.get(f"{prefix}pooler.dense.bias")
        if weight is not None and bias is not None:
            return {"kernel": jnp.asarray(weight.T, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)}
    return None


def early_stopping(record: dict, accuracy: float, epoch: int, patience: int) -> tuple[bool, bool]:
    """Update ``record`` (best_accuracy, best_epoch, bad_evals) with a dev accuracy ->
    (improved: strictly better than the best so far, stop: ``patience`` evaluations without)."""
    improved = accuracy > record["best_accuracy"]
    if improved:
        record.update(best_accuracy=accuracy, best_epoch=epoch, bad_evals=0)
    else:
        record["bad_evals"] += 1
    return improved, bool(patience) and record["bad_evals"] >= patience


def evaluate_encoded(model: Model, encoded: list[Encoded], labels: np.ndarray, batch_size: int = 64) -> dict:
    """Accuracy and mean cross-entropy of ``model`` (params with ``head``) on encoded pairs."""
    logits = encoded_logits(model, encoded, batch_size).astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    loss = float(-log_probs[np.arange(len(labels)), labels].mean())
    return {"accuracy": float((logits.argmax(-1) == labels).mean()), "loss": loss}


def _base_model(base: Model | str | Path | None, weights_dir) -> Model:
    if isinstance(base, Model):
        return base
    if isinstance(base, Classifier):
        return base.model
    return load_model(base, weights_dir=weights_dir)


def _check_resumable(progress: dict, config: TrainConfig, labels: tuple[str, ...], out_dir: Path) -> None:
    saved = progress.get("run", {})
    changed = {k: (saved.get(k), v) for k, v in config.trajectory().items() if saved.get(k) != v}
    if changed or tuple(progress.get("labels", ())) != labels:
        detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items()) or "labels differ"
        raise JaxsimError(
            f"{out_dir} holds a run with other settings ({detail}); resume with the same settings, "
            "pass resume=False / --no-resume to start over, or choose another output folder"
        )


def train(
    base: Model | str | Path | None,
    train_data: PairData,
    dev_data: PairData,
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    resume: bool = True,
    progress: bool = True,
    weights_dir: str | Path | None = None,
) -> TrainResult:
    """Fine-tune ``base`` (a BERT-family model or classifier; default the embedded MiniLM) on
    ``train_data``; evaluate on ``dev_data`` after every epoch; keep the best dev params in
    ``out_dir/model.safetensors``; stop early after ``patience`` evaluations without gain."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    model = _base_model(base, weights_dir)
    labels = tuple(train_data.label_names)
    if tuple(dev_data.label_names) != labels:
        raise JaxsimError(f"dev labels {dev_data.label_names} differ from train labels {labels}")
    if model.source is None:
        raise JaxsimError("the base model must come from a folder (its config and tokenizer are copied)")
    if not isinstance(model.config, BertConfig):
        raise JaxsimError(f"{model.name} is not a BERT-family encoder: pair classifiers read the [CLS] "
                          "state, which a causal model (GPT-Neo) computes from the first token alone")
    max_length = min(config.max_length, model.config.max_position_embeddings)
    tokenizer = load_tokenizer(model.source.model_dir, max_length)
    write_classifier_folder(out_dir, model.source.model_dir, labels)

    from jaxsim.models.config import load_config

    clf_config = load_config(out_dir)  # the same encoder config, with num_labels set
    params = {**model.params, "head": initial_head(model, len(labels), config.seed)}
    train_enc = encode_pairs(tokenizer, train_data.pairs)
    dev_enc = encode_pairs(tokenizer, dev_data.pairs)
    lengths = np.asarray([len(e) for e in train_enc])
    batches_per_epoch = math.ceil(len(train_enc) / config.batch_size)
    total_steps = config.epochs * batches_per_epoch
    optimizer, train_step = _compiled_step(
        clf_config, config.learning_rate, total_steps, config.warmup_ratio, config.weight_decay,
        config.clip_norm, config.dropout,
    )
    key = jax.random.key(config.seed)

    manager = checkpoint_manager(out_dir / "checkpoints")
    record = {"run": config.trajectory(), "labels": list(labels), "epoch": 0, "batches_done": 0,
              "best_accuracy": -1.0, "best_epoch": -1, "bad_evals": 0, "history": []}
    if resume and manager.latest_step() is not None:
        state, record = restore_state(manager, params, optimizer)
        _check_resumable(record, config, labels, out_dir)
    else:
        if manager.latest_step() is not None:  # resume=False: start over in the same folder
            for step in manager.all_steps():
                manager.delete(step)
        state = init_state(params, optimizer)

    eval_model = dataclasses.replace(model, config=clf_config, tokenizer=tokenizer, params=state.params)
    saved: list = [(int(state.step), json.dumps(record))]

    def checkpoint() -> None:  # save unless this exact (step, progress) is already on disk
        current = (int(state.step), json.dumps(record))
        if current != saved[-1]:
            save_state(manager, state, record)
            saved.append(current)

    stopped = "completed"
    run_started, steps_at_start = time.perf_counter(), int(state.step)
    try:
        while record["epoch"] < config.epochs and not record.get("early_stopped"):
            epoch = record["epoch"]
            order = epoch_order(lengths, config.batch_size, config.seed, epoch, config.group)
            bar = tqdm(order, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress,
                       initial=record["batches_done"], total=len(order), unit="batch")
            if record["batches_done"] == 0:  # running sums live in the record: resume keeps them
                record["running"] = {"loss": 0.0, "batches": 0, "correct": 0.0, "rows": 0.0}
            running = record["running"]
            for index in order[record["batches_done"]:]:
                if config.max_steps is not None and int(state.step) >= config.max_steps:
                    stopped = "max_steps"
                    break
                batch = make_batch(train_enc, train_data.labels, index, config.batch_size,
                                   max_length, tokenizer.pad_token_id)
                state, metrics = train_step(state, tuple(jnp.asarray(a) for a in batch), key)
                record["batches_done"] += 1
                loss = float(metrics["loss"])
                running.update(loss=running["loss"] + loss, batches=running["batches"] + 1,
                               correct=running["correct"] + float(metrics["correct"]),
                               rows=running["rows"] + float(metrics["rows"]))
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", acc=f"{running['correct'] / running['rows']:.3f}")
                if int(state.step) % config.save_every == 0:
                    checkpoint()
            bar.close()
            if stopped == "max_steps":
                break
            eval_model = dataclasses.replace(eval_model, params=state.params)
            dev = evaluate_encoded(eval_model, dev_enc, dev_data.labels, config.eval_batch_size)
            entry = {
                "epoch": epoch + 1, "step": int(state.step),
                "train_loss": running["loss"] / max(running["batches"], 1),
                "train_accuracy": running["correct"] / max(running["rows"], 1.0),
                "dev_accuracy": dev["accuracy"], "dev_loss": dev["loss"],
            }
            record["history"].append(entry)
            improved, stop = early_stopping(record, dev["accuracy"], epoch + 1, config.patience)
            if improved:
                save_classifier_weights(out_dir, state.params, clf_config)
            if progress:
                print(f"epoch {epoch + 1}: dev accuracy {dev['accuracy']:.4f} (loss {dev['loss']:.4f}); "
                      f"best {record['best_accuracy']:.4f} at epoch {record['best_epoch']}")
            record.update(epoch=epoch + 1, batches_done=0, early_stopped=stop)
            checkpoint()
    except KeyboardInterrupt:
        try:
            checkpoint()
        except RuntimeError:  # interrupted inside the step: its donated input is gone
            warnings.warn("interrupted mid-step: resume continues from the last checkpoint", stacklevel=2)
        manager.close()
        raise
    checkpoint()
    manager.close()
    if record.get("early_stopped"):
        stopped = "early_stop"
    seconds = time.perf_counter() - run_started
    summary = {
        **record, "stopped": stopped, "steps": int(state.step), "train_pairs": len(train_data),
        "dev_pairs": len(dev_data), "train_source": train_data.source, "dev_source": dev_data.source,
        "base_model": str(model.source.root), "seconds_this_run": round(seconds, 1),
        "steps_this_run": int(state.step) - steps_at_start,
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return TrainResult(out_dir, labels, list(record["history"]), record["best_accuracy"],
                       record["best_epoch"], int(state.step), stopped, state.params)


__all__ = ["TrainConfig", "TrainResult", "TrainState", "evaluate_encoded", "initial_head", "train"]
