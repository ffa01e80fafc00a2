"""Pair-classifier throughput: training steps/s and attributions/s, jaxsim vs a PyTorch twin.

Same machine, same process, same classifier (default: the MRPC fine-tune of
``benchmarks/train_recipe.py``, an all-MiniLM-L6-v2 cross-encoder; it is a Hugging Face folder, so
PyTorch loads the identical weights):

- **train**: one AdamW step (forward, backward, clip 1.0, update) on a batch of ``--batch`` MRPC
  training pairs padded to ``--length`` tokens. jaxsim: the jitted, donated step of
  ``jaxsim.train`` (dropout off); PyTorch: ``BertForSequenceClassification`` in train mode with
  its dropout off, ``torch.optim.AdamW``. Median of ``--repeats`` steps after one warm-up step.
- **attribute**: pairs/s for GS, GI, LRP-0 and LAT on ``--attr-batch`` MRPC test pairs padded
  to ``--length``. jaxsim: ``jaxsim.explain.first_order.attribute`` (one jitted, batched call);
  PyTorch: batched autograd w.r.t. the embedding output (GS, GI), gradient x input through the
  independent rule twin of ``benchmarks/torch_reference.py`` (LRP-0: AH, LN, GA rules; tanh of
  the pooler proportional), and attention-matrix products (LAT, ``output_attentions``).

    python benchmarks/classifier.py --model out/mrpc-minilm
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "mrpc"
OUT = ROOT / "benchmarks" / "results" / "classifier.md"
ATTR_METHODS = ("gs", "gi", "lrp", "lat")


def _timed(fn, repeats: int) -> tuple[float, float]:
    """(first call seconds, median of ``repeats`` later calls)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def batch_of(clf, pairs, length: int):
    from jaxsim.text import pad_batch

    encoded = [e for e in clf.encode(pairs) if len(e) <= length][: len(pairs)]
    return pad_batch(encoded, length)


# --- PyTorch twin ---------------------------------------------------------------------------

def torch_classifier_logits(hf, x, mask, rules):
    """Logits from the embedding output through the twin encoder (+ the HF head)."""
    import torch

    from benchmarks import torch_reference as tr

    weights = tr.as_weights(hf.bert)
    hidden = tr.encode(weights, x, mask, rules)
    z = hf.bert.pooler.dense(hidden[:, 0])
    pooled = torch.tanh(z) if rules is tr.PLAIN else z * (torch.tanh(z.detach()) / torch.where(
        z.detach().abs() < 1e-9, torch.ones_like(z), z.detach())).detach()
    return hf.classifier(pooled)


def torch_attribute(hf, batch, method: str):
    """Token scores ``[B, n]`` of the predicted class (numpy), as jaxsim defines them."""
    import torch

    from benchmarks import torch_reference as tr

    ids = torch.as_tensor(batch.ids, dtype=torch.long)
    types = torch.as_tensor(batch.type_ids, dtype=torch.long)
    mask = torch.as_tensor(batch.mask)
    if method == "lat":
        with torch.no_grad():
            out = hf(input_ids=ids, token_type_ids=types, attention_mask=mask.long(), output_attentions=True)
            r = out.attentions[-1][:, :, 0, :]
            for a in reversed(out.attentions[:-1]):
                r = torch.einsum("bhq,bhqk->bhk", r, a)
        return r.sum(1).numpy()
    x = hf.bert.embeddings(input_ids=ids, token_type_ids=types).detach().requires_grad_(True)
    rules = tr.LRP if method == "lrp" else tr.PLAIN
    logits = torch_classifier_logits(hf, x, mask, rules)
    target = logits.argmax(-1)
    (grad,) = torch.autograd.grad(logits[torch.arange(len(target)), target].sum(), x)
    with torch.no_grad():
        if method == "gs":
            scores = grad.square().sum(-1)
        elif method == "gi":
            scores = (x * grad).square().sum(-1)
        else:
            scores = (x * grad).abs().sum(-1)
    return (scores * mask).numpy()


# --- benchmarks ------------------------------------------------------------------------------

def bench_train(clf, hf, batch, labels, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import torch

    from jaxsim.train.loop import _compiled_step
    from jaxsim.train.step import init_state

    optimizer, step = _compiled_step(clf.config, 5e-5, 10_000, 0.0, 0.01, 1.0, 0.0)
    holder = {"state": init_state(clf.params, optimizer)}
    arrays = (jnp.asarray(batch.ids), jnp.asarray(batch.type_ids), jnp.asarray(batch.mask),
              jnp.asarray(labels), jnp.ones(len(labels), jnp.float32))
    key = jax.random.key(0)

    def jax_step():
        holder["state"], metrics = step(holder["state"], arrays, key)
        jax.block_until_ready(metrics["loss"])

    hf.train()
    for module in hf.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    opt = torch.optim.AdamW(hf.parameters(), lr=5e-5, weight_decay=0.01)
    inputs = dict(input_ids=torch.as_tensor(batch.ids, dtype=torch.long),
                  token_type_ids=torch.as_tensor(batch.type_ids, dtype=torch.long),
                  attention_mask=torch.as_tensor(batch.mask, dtype=torch.long),
                  labels=torch.as_tensor(labels, dtype=torch.long))

    def torch_step():
        opt.zero_grad(set_to_none=True)
        loss = hf(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        opt.step()

    out = {}
    for name, fn in (("jaxsim", jax_step), ("torch", torch_step)):
        first, median = _timed(fn, repeats)
        out[name] = {"first_s": first, "step_s": median, "steps_per_s": 1.0 / median}
    hf.eval()
    return out


def bench_attributions(clf, hf, batch, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxsim.explain.first_order import attribute

    args = (clf.params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids), jnp.asarray(batch.mask),
            jnp.full(len(batch.ids), -1, jnp.int32))
    out = {}
    rows = len(batch.ids)
    for method in ATTR_METHODS:
        def run_jax(method=method):
            return jax.block_until_ready(attribute(*args, config=clf.config, method=method).scores)

        def run_torch(method=method):
            return torch_attribute(hf, batch, method)

        first_j, med_j = _timed(run_jax, repeats)  # the first call compiles
        first_t, med_t = _timed(run_torch, repeats)
        jax_scores, torch_scores = np.asarray(run_jax()), run_torch()
        rel = float(np.abs(jax_scores - torch_scores).max() / np.abs(torch_scores).max())
        out[method] = {"jaxsim_pairs_per_s": rows / med_j, "torch_pairs_per_s": rows / med_t,
                       "jaxsim_first_s": first_j, "torch_first_s": first_t, "max_rel_diff": rel}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "out" / "mrpc-minilm")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--attr-batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    import jax
    import torch
    import transformers

    from jaxsim.classifier import load_classifier
    from jaxsim.train import read_pairs

    torch.set_num_threads(args.threads)
    clf = load_classifier(args.model, max_length=args.length)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(args.model), attn_implementation="eager").eval()
    train = read_pairs(args.data / "train.tsv", clf.labels)
    test = read_pairs(args.data / "test.tsv", clf.labels)
    train_batch = batch_of(clf, train.pairs[: 2 * args.batch], args.length)
    labels = np.resize(train.labels, len(train_batch.ids))[: len(train_batch.ids)]
    train_batch = train_batch._replace(ids=train_batch.ids[: args.batch],
                                       type_ids=train_batch.type_ids[: args.batch],
                                       mask=train_batch.mask[: args.batch])
    labels = labels[: args.batch]
    attr_batch = batch_of(clf, test.pairs[: 2 * args.attr_batch], args.length)
    attr_batch = attr_batch._replace(ids=attr_batch.ids[: args.attr_batch],
                                     type_ids=attr_batch.type_ids[: args.attr_batch],
                                     mask=attr_batch.mask[: args.attr_batch])

    attributions = bench_attributions(clf, hf, attr_batch, args.repeats)
    training = bench_train(clf, hf, train_batch, labels, args.repeats)

    lines = [
        "# Pair classifier: training and attribution throughput (`benchmarks/classifier.py`)", "",
        f"{datetime.date.today().isoformat()}; machine: {platform.machine()}, {os.cpu_count()} CPU cores "
        f"(shared with other jobs: absolute times vary with load, the two frameworks ran back to back); "
        f"jax {jax.__version__} CPU, torch {torch.__version__} ({args.threads} threads); model "
        f"`{args.model.name}` (all-MiniLM-L6-v2 cross-encoder, 6 layers, d = 384).", "",
        f"## Training: one AdamW step, batch {len(train_batch.ids)} x {args.length} tokens "
        f"(median of {args.repeats})", "",
        "| framework | steps/s | s/step | first step s (compile) |", "|---|---|---|---|",
    ]
    for name, r in training.items():
        lines.append(f"| {name} | {r['steps_per_s']:.3f} | {r['step_s']:.2f} | {r['first_s']:.1f} |")
    ratio = training["jaxsim"]["steps_per_s"] / training["torch"]["steps_per_s"]
    lines += ["", f"jaxsim / torch: **{ratio:.2f}x**.", "",
              f"## Attributions: pairs/s, batch {len(attr_batch.ids)} x {args.length} tokens "
              f"(median of {args.repeats})", "",
              "| method | jaxsim pairs/s | torch pairs/s | jaxsim / torch | jaxsim first call s "
              "(compile) | max rel. diff of scores |", "|---|---|---|---|---|---|"]
    for m, r in attributions.items():
        lines.append(f"| {m} | {r['jaxsim_pairs_per_s']:.2f} | {r['torch_pairs_per_s']:.2f} | "
                     f"{r['jaxsim_pairs_per_s'] / r['torch_pairs_per_s']:.2f}x | {r['jaxsim_first_s']:.1f} | "
                     f"{r['max_rel_diff']:.1e} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
