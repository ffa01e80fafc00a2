"""A PyTorch twin of the GMASK reference loop (UVa-NLP/GMASK as METHODS.md §3/§5 describes it), for timing.

Written from the classifier's weights only (a jaxsim params pytree converted to tensors, so both
frameworks run the identical model): functional BERT + pooler + classifier with the mask on the
embedding output and an additive ``(1 - m) · -10000`` attention mask; IMASK (10 steps x 10 hard
Gumbel samples, Adam 0.1) then GMASK on the shortened input (100 steps x 500 samples, Adam 0.1,
``CosineAnnealingLR(T_max=10)``), one pair at a time, batch = the samples, as the reference runs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def torch_weights(params: dict, device: str = "cpu") -> dict:
    """jaxsim params pytree (numpy-convertible leaves) -> the same nesting of float32 tensors."""
    def convert(node):
        if isinstance(node, dict):
            return {k: convert(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [convert(v) for v in node]
        return torch.as_tensor(np.asarray(node, np.float32), device=device)
    return convert(params)


def _dense(p: dict, x: Tensor) -> Tensor:
    return x @ p["kernel"] + p["bias"]


def _ln(p: dict, x: Tensor, eps: float) -> Tensor:
    return F.layer_norm(x, (x.shape[-1],), p["scale"], p["bias"], eps)


def embed(w: dict, ids: Tensor, types: Tensor, eps: float) -> Tensor:
    """``i64[n] -> f32[n, d]`` embedding output (after its LayerNorm)."""
    e = w["embeddings"]
    return _ln(e["ln"], e["word"][ids] + e["position"][: len(ids)] + e["token_type"][types], eps)


def masked_logits(w: dict, emb: Tensor, keep: Tensor, heads: int, eps: float) -> Tensor:
    """``emb f32[n, d]``, ``keep f32[S, n]`` -> logits f32[S, C] (mask on embeddings and attention)."""
    x = emb[None] * keep[..., None]
    bias = ((1.0 - keep) * -10000.0)[:, None, None, :]
    s, n, d = x.shape
    for layer in w["layers"]:
        att = layer["attention"]
        q, k, v = (_dense(att[name], x).view(s, n, heads, d // heads).transpose(1, 2)
                   for name in ("query", "key", "value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads) + bias, -1)
        ctx = (probs @ v).transpose(1, 2).reshape(s, n, d)
        x = _ln(att["ln"], _dense(att["output"], ctx) + x, eps)
        mlp = layer["mlp"]
        x = _ln(mlp["ln"], _dense(mlp["output"], F.gelu(_dense(mlp["intermediate"], x))) + x, eps)
    head = w["head"]
    return _dense(head["classifier"], torch.tanh(_dense(head["pooler"], x[:, 0])))


def explain(w: dict, ids: np.ndarray, types: np.ndarray, segment: np.ndarray, *, heads: int, eps: float,
            k: int = 10, samples: int = 500, steps: int = 100, imask_samples: int = 10,
            imask_steps: int = 10, seed: int = 42, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """IMASK + GMASK on one pair; returns (IMASK keep probabilities f32[n], GMASK θ f32[n'])."""
    torch.manual_seed(seed)
    ids_t = torch.as_tensor(ids, dtype=torch.long, device=device)
    types_t = torch.as_tensor(types, dtype=torch.long, device=device)
    content = torch.as_tensor(segment >= 0, device=device)
    with torch.no_grad():
        emb = embed(w, ids_t, types_t, eps)
        y_hat = masked_logits(w, emb, torch.ones(1, len(ids), device=device), heads, eps).argmax(-1)

    r = torch.ones(len(ids), 2, device=device, requires_grad=True)
    opt = torch.optim.Adam([r], lr=0.1)
    for _ in range(imask_steps):
        logits = torch.sigmoid(r)
        p = torch.softmax(logits, -1)[:, 1]
        m = F.gumbel_softmax(logits.expand(imask_samples, -1, -1), tau=1.0, hard=True)[..., 1]
        keep = torch.where(content, m, torch.ones_like(m))
        ce = F.cross_entropy(masked_logits(w, emb, keep, heads, eps), y_hat.expand(imask_samples))
        loss = ce + 0.1 * (p * torch.log(p + 1e-8))[content].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    imask = torch.softmax(torch.sigmoid(r), -1)[:, 1].detach().cpu().numpy()

    order = [int(t) for t in np.argsort(-np.where(segment >= 0, imask, -np.inf), kind="stable")
             if segment[t] >= 0]
    kw = min(k, len(order))
    s1 = [t for t in order[:kw] if segment[t] == 0]
    s2 = [t for t in order[:kw] if segment[t] == 1]
    if not s1 or not s2:
        s1 = [t for t in order if segment[t] == 0][: kw // 2]
        s2 = [t for t in order if segment[t] == 1][: kw // 2]
    seps = [t for t in range(1, len(ids)) if segment[t] < 0]
    src = [0, *s1, seps[0], *s2, seps[-1]]
    short_types = torch.as_tensor([0] * (len(s1) + 2) + [1] * (len(s2) + 1), device=device)
    side = torch.as_tensor([-1] + [0] * len(s1) + [-1] + [1] * len(s2) + [-1], device=device)
    with torch.no_grad():
        short = embed(w, ids_t[torch.as_tensor(src, device=device)], short_types, eps)
    groups = max(2, min(len(s1), len(s2)))
    z = torch.ones(len(src), groups, device=device, requires_grad=True)
    t = torch.ones(groups, device=device, requires_grad=True)
    opt = torch.optim.Adam([z, t], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for _ in range(steps):
        zl, tl = torch.sigmoid(z), torch.sigmoid(t)
        zp, tp = torch.softmax(zl, 1), torch.softmax(tl, 0)
        zs = F.gumbel_softmax(zl.expand(samples, -1, -1), tau=0.5, hard=True)
        ts = F.gumbel_softmax(tl.expand(samples, -1), tau=0.5, hard=True)
        m = torch.einsum("sng,sg->sn", zs, ts)
        keep = torch.where(side >= 0, m, torch.ones_like(m))
        ce = F.cross_entropy(masked_logits(w, short, keep, heads, eps), y_hat.expand(samples))
        q1, q2 = (torch.softmax(zp[side == i].sum(0), 0) for i in (0, 1))
        loss = (ce - (tp * torch.log(tp + 1e-8)).sum()
                + 10 * ((q1 * torch.log(q1 + 1e-8)).sum() + (q2 * torch.log(q2 + 1e-8)).sum()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    theta = (torch.softmax(torch.sigmoid(z), 1) @ torch.softmax(torch.sigmoid(t), 0)).detach().cpu().numpy()
    return imask, theta
