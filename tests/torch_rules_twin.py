"""A PyTorch twin of jaxsim's BiLRP rules for *any* Hugging Face encoder, written on the HF
modules themselves (no jaxsim code): the rules are patched into the running PyTorch model.

- AH: ``torch.nn.functional.softmax`` returns a detached tensor while the twin runs;
- LN: every ``nn.LayerNorm`` computes ``(x - mean) / sqrt(var + eps).detach() * w + b``;
- GA: every GELU activation computes ``z * (gelu(z) / z).detach()``;
- GATE: ModernBERT's MLP activation returns ``gelu(a).detach()``, so ``gelu(a) * g`` passes
  relevance through ``g`` only.

``relevance(model, ids)`` -> ``r f64[h, n]`` with ``r_m[t] = sum_d x[t, d] d phi_m / d x[t, d]``,
``x`` the embedding module's output and ``phi`` the mean-pooled last hidden state: the same
quantity as ``jaxsim.explain.bilrp`` (R = r(a)^T r(b)).
"""

from __future__ import annotations

import contextlib
import types

import numpy as np
import torch
import torch.nn.functional as F

_GELUS = {"GELUActivation": False, "NewGELUActivation": True, "GELUTanh": True,
          "PytorchGELUTanh": True, "GELUPytorchTanh": True}


def _ln_rule(self, x):
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    out = (x - mean) / torch.sqrt(var + self.eps).detach()
    if self.weight is not None:
        out = out * self.weight
    return out if self.bias is None else out + self.bias


def _ga_rule(approximate: bool):
    def forward(self, z):
        act = F.gelu(z, approximate="tanh" if approximate else "none")
        small = z.abs() < 1e-9
        ratio = torch.where(small, torch.full_like(z, 0.5), act / torch.where(small, torch.ones_like(z), z))
        return z * ratio.detach()
    return forward


def _gate_rule(approximate: bool):
    def forward(self, z):
        return F.gelu(z, approximate="tanh" if approximate else "none").detach()
    return forward


@contextlib.contextmanager
def lrp_rules(model: torch.nn.Module):
    """Patch the rules into ``model`` (and torch's softmax) for the duration of the block."""
    softmax = F.softmax
    patched = []
    gates = {id(m.act) for m in model.modules() if type(m).__name__ == "ModernBertMLP"}
    for module in model.modules():
        name = type(module).__name__
        if isinstance(module, torch.nn.LayerNorm):
            patched.append(module)
            module.forward = types.MethodType(_ln_rule, module)
        elif name in _GELUS:
            rule = _gate_rule if id(module) in gates else _ga_rule
            patched.append(module)
            module.forward = types.MethodType(rule(_GELUS[name]), module)
    torch.nn.functional.softmax = lambda *a, **k: softmax(*a, **k).detach()
    try:
        yield
    finally:
        torch.nn.functional.softmax = softmax
        for module in patched:
            del module.forward  # back to the class's forward


def relevance(model: torch.nn.Module, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One unpadded text -> (``r f64[h, n]``, ``phi f64[h]``) under the rules."""
    captured = {}

    def hook(module, inputs, output):
        x = output.detach().requires_grad_(True)
        captured["x"] = x
        return x

    handle = model.embeddings.register_forward_hook(hook)
    try:
        with lrp_rules(model):
            input_ids = torch.tensor([ids])
            hidden = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).last_hidden_state
            phi = hidden[0].mean(0)
            x = captured["x"]
            rows = [(torch.autograd.grad(phi[m], x, retain_graph=True)[0][0] * x[0]).sum(-1)
                    for m in range(phi.shape[0])]
    finally:
        handle.remove()
    return torch.stack(rows).detach().double().numpy(), phi.detach().double().numpy()
