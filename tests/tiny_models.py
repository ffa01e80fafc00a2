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


# --- the families of issue #16: RoBERTa / XLM-R, DistilBERT, MPNet, ModernBERT ----------------

#: Text the tiny tokenizers are trained on (covers the test sentences' words).
TOKENIZER_CORPUS = [
    "A man is playing a guitar.", "A person plays an instrument.", "A woman is singing a song.",
    "The quick brown fox jumps over the lazy dog near the riverbank, unbelievably fast.",
    "The cat sat on the mat near the window all afternoon.", "A dog sleeps on the rug.",
    "Touchscreen-compatible gloves keep your hands warm in winter.", "It is sleeping! Hi!",
    "the old lighthouse keeper climbed the winding stairs every night to light the lamp",
    "that guided fishing boats safely past the rocks", "Stocks fell sharply on Monday.",
    "rain fell softly on the quiet village while children played cards by the warm fire",
    "and told long stories", "Markets dropped after weak earnings reports.",
]


def _byte_level_bpe(specials: list[str], cls: str, sep: str, pair_sep: str, vocab: int = 400):
    """A byte-level BPE (``Ġ`` marks a leading space), trained on ``TOKENIZER_CORPUS``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TOKENIZER_CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {pair_sep} $B:1 {sep}:1",
        special_tokens=[(t, tok.token_to_id(t)) for t in {cls, sep}],
    )
    return tok


def _sentencepiece_unigram(specials: list[str], vocab: int = 300):
    """A SentencePiece-style Unigram (``▁`` marks a word start), trained on ``TOKENIZER_CORPUS``,
    with XLM-R's template ``<s> a </s></s> b </s>``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab, special_tokens=specials, unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(TOKENIZER_CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[(t, tok.token_to_id(t)) for t in ("<s>", "</s>")],
    )
    return tok


def _wordpiece(specials: list[str], cls: str, sep: str, vocab: int = 400):
    """A lower-casing WordPiece (``##`` continuations) with MPNet's special tokens."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(TOKENIZER_CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}",
        special_tokens=[(t, tok.token_to_id(t)) for t in (cls, sep)],
    )
    return tok


ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, pad = 1
MODERNBERT_SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]


def _save(model: torch.nn.Module, path: Path, tokenizer=None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    if tokenizer is None:
        _copy_tokenizer(path)
    else:
        tokenizer.save(str(path / "tokenizer.json"))
    return path


def _biases(model: torch.nn.Module, no_bias: bool) -> None:
    zero_biases(model) if no_bias else randomize_biases(model)


def build_roberta(path: Path, *, xlm: bool = False, classifier: bool = False, num_labels: int = 3,
                  seed: int = 0, no_bias: bool = False, layers: int = 2) -> Path:
    """RoBERTa with a byte-level BPE tokenizer, or XLM-R (``xlm=True``) with a Unigram one."""
    tokenizer = (_sentencepiece_unigram(ROBERTA_SPECIALS) if xlm
                 else _byte_level_bpe(ROBERTA_SPECIALS, "<s>", "</s>", "</s> </s>"))
    torch.manual_seed(seed)
    kwargs = dict(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=layers,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=130,
        initializer_range=0.2, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, num_labels=num_labels,
    )
    if xlm:
        config = transformers.XLMRobertaConfig(**kwargs)
        cls = (transformers.XLMRobertaForSequenceClassification if classifier
               else transformers.XLMRobertaModel)
    else:
        config = transformers.RobertaConfig(**kwargs)
        cls = transformers.RobertaForSequenceClassification if classifier else transformers.RobertaModel
    model = cls(config).eval()
    _biases(model, no_bias)
    return _save(model, path, tokenizer)


def build_distilbert(path: Path, *, classifier: bool = False, num_labels: int = 3, seed: int = 0,
                     no_bias: bool = False, layers: int = 2) -> Path:
    """DistilBERT with the embedded MiniLM's WordPiece tokenizer."""
    torch.manual_seed(seed)
    config = transformers.DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=layers, n_heads=4, hidden_dim=64,
        max_position_embeddings=128, initializer_range=0.2, num_labels=num_labels,
    )
    cls = (transformers.DistilBertForSequenceClassification if classifier
           else transformers.DistilBertModel)
    model = cls(config).eval()
    _biases(model, no_bias)
    return _save(model, path)


def build_mpnet(path: Path, *, classifier: bool = False, num_labels: int = 3, seed: int = 0,
                no_bias: bool = False, layers: int = 2) -> Path:
    """MPNet with a WordPiece tokenizer carrying MPNet's special tokens (pad = 1)."""
    tokenizer = _wordpiece(ROBERTA_SPECIALS, "<s>", "</s>")
    torch.manual_seed(seed)
    config = transformers.MPNetConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=layers,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=130,
        relative_attention_num_buckets=32, initializer_range=0.2, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, num_labels=num_labels,
    )
    cls = transformers.MPNetForSequenceClassification if classifier else transformers.MPNetModel
    model = cls(config).eval()
    with torch.no_grad():  # HF initialises the bucket table like any embedding: make it matter
        model.base_model.encoder.relative_attention_bias.weight.normal_(0.0, 1.0)
    _biases(model, no_bias)
    return _save(model, path, tokenizer)


def build_modernbert(path: Path, *, classifier: bool = False, num_labels: int = 3, seed: int = 0,
                     biases: bool = False, local_attention: int = 8, layers: int = 4,
                     classifier_pooling: str = "cls") -> Path:
    """ModernBERT with a byte-level BPE tokenizer; no biases unless ``biases`` (then random).
    Layers 0 and 3 are global, 1 and 2 local (window ``|i - j| <= local_attention // 2``)."""
    tokenizer = _byte_level_bpe(MODERNBERT_SPECIALS, "[CLS]", "[SEP]", "[SEP]")
    torch.manual_seed(seed)
    ids = {t: tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")}
    config = transformers.ModernBertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, intermediate_size=48,
        num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=128,
        local_attention=local_attention, global_attn_every_n_layers=3, global_rope_theta=160_000.0,
        local_rope_theta=10_000.0, initializer_range=0.2, pad_token_id=ids["[PAD]"],
        bos_token_id=ids["[CLS]"], cls_token_id=ids["[CLS]"], eos_token_id=ids["[SEP]"],
        sep_token_id=ids["[SEP]"], attention_bias=biases, mlp_bias=biases, norm_bias=biases,
        classifier_bias=biases, num_labels=num_labels, classifier_pooling=classifier_pooling,
    )
    cls = (transformers.ModernBertForSequenceClassification if classifier
           else transformers.ModernBertModel)
    model = cls(config).eval()
    if biases:
        randomize_biases(model)
    return _save(model, path, tokenizer)
