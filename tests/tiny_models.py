"""Tiny random Hugging Face models built in PyTorch with a fixed seed, saved as safetensors.

They share the embedded MiniLM's WordPiece tokenizer files, so ``jaxsim.load_model`` can load
them like any local model folder. ``initializer_range`` is larger than HF's 0.02 so attention
is far from uniform and the tests exercise real mixing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import transformers

from jaxsim.convert.source import default_model_dir

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
)
VOCAB = 30522


def _copy_tokenizer(target: Path) -> None:
    source = default_model_dir()
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, target / name)


def zero_biases(model: torch.nn.Module) -> None:
    """Zero every Linear bias and LayerNorm beta (not GPT-Neo's causal-mask buffer ``bias``)."""
    with torch.no_grad():
        for module in model.modules():
            is_affine = isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm))
            if is_affine and module.bias is not None:
                module.bias.zero_()


def randomize_biases(model: torch.nn.Module, std: float = 0.1) -> None:
    """HF initialises biases (and LayerNorm beta) to 0; make them random so tests see them."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)) and module.bias is not None:
                module.bias.normal_(0.0, std)


def build_bert(path: Path, *, classifier: bool = False, num_labels: int = 3, seed: int = 0,
               no_bias: bool = False, layers: int = 2, max_positions: int = 128) -> Path:
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=max_positions, initializer_range=0.2,
        num_labels=num_labels,
    )
    cls = transformers.BertForSequenceClassification if classifier else transformers.BertModel
    model = cls(config).eval()
    zero_biases(model) if no_bias else randomize_biases(model)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    _copy_tokenizer(path)
    return path


def build_gpt_neo(path: Path, *, seed: int = 0, no_bias: bool = False, window: int = 8) -> Path:
    torch.manual_seed(seed)
    config = transformers.GPTNeoConfig(
        vocab_size=VOCAB, hidden_size=32, num_layers=4, num_heads=4, intermediate_size=64,
        attention_types=[[["global", "local"], 2]], window_size=window,
        max_position_embeddings=128, initializer_range=0.2, bos_token_id=101, eos_token_id=102,
    )
    model = transformers.GPTNeoModel(config).eval()
    zero_biases(model) if no_bias else randomize_biases(model)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    _copy_tokenizer(path)
    return path
