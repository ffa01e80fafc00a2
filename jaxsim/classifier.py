"""Sentence-pair classifiers: ``[CLS] a [SEP] b [SEP]`` -> BERT encoder -> pooler -> classifier.

A classifier is a ``Model`` whose params hold the ``BertForSequenceClassification`` head under
``params["head"]`` (``jaxsim.models.heads``), plus its label names. ``load_classifier`` reads

- a Hugging Face ``BertForSequenceClassification`` folder (``config.json`` with ``id2label``,
  ``model.safetensors``), which is also the format ``jaxsim train`` exports its best model in, or
- a ``jaxsim train`` output folder's orbax training checkpoints (``checkpoints/``), e.g. of a run
  that was interrupted before its first evaluation, with ``step=`` (default: latest).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.convert.keymap import to_state_dict
from jaxsim.convert.train_checkpoint import restore_params
from jaxsim.errors import JaxsimError
from jaxsim.model import Model, load_model
from jaxsim.models import pair_logits
from jaxsim.models.config import BertConfig, ModelConfig, load_config
from jaxsim.text import Encoded, encode_pairs, load_tokenizer, map_encoded

#: Tokenizer files copied next to an exported classifier (whichever exist).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A sentence-pair classifier: the ``Model`` (params with ``head``) and its label names."""

    model: Model
    labels: tuple[str, ...]

    @property
    def params(self) -> dict:
        return self.model.params

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def name(self) -> str:
        return self.model.name

    def encode(self, pairs: Sequence[tuple[str, str]]) -> list[Encoded]:
        return encode_pairs(self.model.tokenizer, pairs)

    def logits(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        """``f32[N, C]`` logits, bucketed batches (one compilation per bucket)."""
        return encoded_logits(self.model, self.encode(pairs), batch_size)

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> list[str]:
        return [self.labels[i] for i in self.logits(pairs, batch_size).argmax(-1)]

    def accuracy(self, data, batch_size: int = 32) -> float:
        """Accuracy on a ``PairData`` (whose label names must match)."""
        if tuple(data.label_names) != self.labels:
            data = relabel(data, self.labels)
        return float((self.logits(data.pairs, batch_size).argmax(-1) == data.labels).mean())

    def explain(self, text_a: str, text_b: str, method: str = "gi", **options):
        """First-order attribution of one pair (``jaxsim.explain.first_order``)."""
        from jaxsim.explain.first_order import explain_pair

        return explain_pair(self, text_a, text_b, method=method, **options)


def encoded_logits(model: Model, encoded: Sequence[Encoded], batch_size: int = 32) -> np.ndarray:
    """``f32[N, C]`` logits of encoded pairs, bucketed batches of ``batch_size`` rows."""
    rows = map_encoded(
        encoded, batch_size=batch_size, max_length=model.tokenizer.max_length,
        pad_id=model.tokenizer.pad_token_id, unpack=lambda logits, row, i: logits[row],
        compute=lambda batch: pair_logits(model.params, *(jnp.asarray(a) for a in batch),
                                          config=model.config),
    )
    return np.stack(rows) if rows else np.zeros((0, model.config.num_labels), np.float32)


def relabel(data, labels: tuple[str, ...]):
    """``data`` (a ``PairData``) with its labels renumbered to the class order ``labels``."""
    index = {name: i for i, name in enumerate(labels)}
    missing = sorted(set(data.label_names) - set(index))
    if missing:
        raise JaxsimError(f"labels {missing} of the data are not classes of the model {list(labels)}")
    mapping = np.asarray([index[name] for name in data.label_names], np.int32)
    return dataclasses.replace(data, labels=mapping[data.labels], label_names=labels)


def labels_from_config(model_dir: Path, num_labels: int) -> tuple[str, ...]:
    """``id2label`` of a HF ``config.json`` in class order (``LABEL_i`` where absent)."""
    hf = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    id2label = {int(k): str(v) for k, v in (hf.get("id2label") or {}).items()}
    return tuple(id2label.get(i, f"LABEL_{i}") for i in range(num_labels))


def as_classifier(model: Model | Classifier) -> Classifier:
    """A ``Classifier`` view of a loaded model that has a classification head."""
    if isinstance(model, Classifier):
        return model
    if "head" not in model.params or model.config.num_labels is None:
        raise JaxsimError(
            f"{model.name} has no sequence-classification head (its config.json architectures "
            "do not end in ForSequenceClassification): pass a classifier, e.g. one trained with "
            "`jaxsim train`"
        )
    source_dir = model.source.model_dir if model.source else None
    labels = (labels_from_config(source_dir, model.config.num_labels) if source_dir
              else tuple(f"LABEL_{i}" for i in range(model.config.num_labels)))
    return Classifier(model, labels)


def load_classifier(
    path: str | Path, *, step: int | None = None, from_checkpoint: bool = False,
    weights_dir: str | Path | None = None, allow_pickle: bool = False, max_length: int | None = None,
) -> Classifier:
    """Load a pair classifier: a HF ``BertForSequenceClassification`` folder (what ``jaxsim
    train`` exports, best dev accuracy), or with ``from_checkpoint``/``step`` the orbax training
    checkpoint of a ``jaxsim train`` output folder (latest step unless ``step`` is given).
    ``max_length`` defaults to the training run's (``training.json``), else the model's limit."""
    path = Path(path)
    if max_length is None:
        max_length = trained_max_length(path)
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    if from_checkpoint or step is not None or (not has_weights and (path / "checkpoints").is_dir()):
        model = load_model(path, weights_dir=weights_dir, use_cache=False, max_length=max_length,
                           allow_pickle=allow_pickle) if has_weights else None
        return _from_checkpoint(path, step, model, max_length)
    model = load_model(path, weights_dir=weights_dir, allow_pickle=allow_pickle, max_length=max_length)
    return as_classifier(model)


def trained_max_length(path: Path) -> int | None:
    """The pair length a ``jaxsim train`` run used (its ``training.json``), else None."""
    record = Path(path) / "training.json"
    if not record.is_file():
        return None
    return json.loads(record.read_text(encoding="utf-8")).get("run", {}).get("max_length")


def _from_checkpoint(path: Path, step, model, max_length) -> Classifier:
    config = load_config(path)
    if config.num_labels is None:
        raise JaxsimError(f"{path}/config.json is not a sequence-classification config")
    params = restore_params(path / "checkpoints", config, step)
    if model is None:
        limit = min(max_length or config.max_position_embeddings, config.max_position_embeddings)
        model = Model(name=path.name, config=config, params=params,
                      tokenizer=load_tokenizer(path, limit), pooling="cls", normalize=False)
    else:
        model = dataclasses.replace(model, params=params)
    return Classifier(model, labels_from_config(path, config.num_labels))


# --- export in the Hugging Face layout -------------------------------------------------------

def classifier_hf_config(base_config_path: Path, labels: Sequence[str]) -> dict:
    """The base model's ``config.json`` turned into a ``BertForSequenceClassification`` one."""
    hf = json.loads(Path(base_config_path).read_text(encoding="utf-8"))
    hf["architectures"] = ["BertForSequenceClassification"]
    hf["id2label"] = {str(i): name for i, name in enumerate(labels)}
    hf["label2id"] = {name: i for i, name in enumerate(labels)}
    hf.pop("num_labels", None)
    return hf


def write_classifier_folder(path: Path, base_model_dir: Path, labels: Sequence[str]) -> None:
    """``config.json`` (with ``id2label``) and the tokenizer files: everything but the weights."""
    path.mkdir(parents=True, exist_ok=True)
    config = classifier_hf_config(Path(base_model_dir) / "config.json", labels)
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    for name in TOKENIZER_FILES:
        if (Path(base_model_dir) / name).is_file():
            shutil.copy(Path(base_model_dir) / name, path / name)


def save_classifier_weights(path: Path, params: dict, config: ModelConfig) -> Path:
    """Write ``model.safetensors`` (atomically: temp file + rename) in the HF layout."""
    from safetensors.numpy import save_file

    if not isinstance(config, BertConfig):
        raise JaxsimError("only BERT-family classifiers can be exported")
    target = Path(path) / "model.safetensors"
    tmp = target.with_suffix(".safetensors.tmp")
    state = to_state_dict(jax.device_get(params), config, prefix="bert.")  # the conversion table, backwards
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(target)
    return target
