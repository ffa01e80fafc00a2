"""Checkpoint conversion: orbax cache, re-conversion of changed sources, key maps, layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

import jaxsim
from jaxsim.convert import cache as convert_cache
from jaxsim.convert.keymap import convert_state_dict
from jaxsim.convert.source import resolve
from tests import tiny_models


def _copy_model(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.name not in skip:
            shutil.copy(f, dst / f.name)
    return dst


def _assert_params_identical(a: dict, b: dict) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("model_dir", ["tiny_bert_dir", "tiny_gpt_neo_dir"])
def test_orbax_cache_restores_params_bit_identical_to_a_fresh_conversion(
    model_dir, request, tmp_path, monkeypatch
):
    path = request.getfixturevalue(model_dir)
    fresh = jaxsim.load_model(path, use_cache=False)
    assert fresh.cache_path is None
    converted = jaxsim.load_model(path, weights_dir=tmp_path)
    assert converted.cache_path is not None and converted.cache_path.is_dir()
    assert tmp_path in converted.cache_path.parents

    def no_conversion(*args, **kwargs):
        raise AssertionError("a cached model must be restored, not converted again")

    monkeypatch.setattr(convert_cache, "convert_state_dict", no_conversion)
    restored = jaxsim.load_model(path, weights_dir=tmp_path)
    assert restored.cache_path == converted.cache_path
    _assert_params_identical(restored.params, fresh.params)


def test_changed_checkpoint_is_reconverted_and_the_stale_cache_removed(tmp_path):
    model_dir = tiny_models.build_bert(tmp_path / "model", seed=0)
    weights = tmp_path / "weights"
    first = jaxsim.load_model(model_dir, weights_dir=weights)
    # Re-save another random model into the same folder: same names, new contents.
    tiny_models.build_bert(model_dir, seed=1)
    second = jaxsim.load_model(model_dir, weights_dir=weights)
    assert second.cache_path != first.cache_path
    assert not first.cache_path.exists()
    assert [p for p in second.cache_path.parent.iterdir()] == [second.cache_path]
    word = load_file(model_dir / "model.safetensors")["embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(np.asarray(second.params["embeddings"]["word"]), word)
    assert not np.array_equal(np.asarray(first.params["embeddings"]["word"]), word)


def test_changed_config_json_is_reconverted(tmp_path, tiny_bert_dir):
    model_dir = _copy_model(tiny_bert_dir, tmp_path / "model")
    weights = tmp_path / "weights"
    first = jaxsim.load_model(model_dir, weights_dir=weights)
    config = json.loads((model_dir / "config.json").read_text())
    config["layer_norm_eps"] = 1e-6
    (model_dir / "config.json").write_text(json.dumps(config))
    second = jaxsim.load_model(model_dir, weights_dir=weights)
    assert second.config.layer_norm_eps == 1e-6
    assert second.cache_path != first.cache_path and not first.cache_path.exists()


def test_key_map_reports_every_missing_unexpected_and_misshaped_tensor_in_one_error(
    tmp_path, tiny_bert_dir
):
    state = load_file(tiny_bert_dir / "model.safetensors")
    del state["encoder.layer.1.attention.self.key.weight"]
    state["encoder.layer.0.intermediate.dense.bias"] = np.zeros(63, np.float32)  # expects 64
    state["encoder.layer.1.output.dense.weight"] = np.zeros((32, 63), np.float32)  # (32, 64)
    state["encoder.layer.0.attention.self.rotary.weight"] = np.zeros((4, 4), np.float32)
    model_dir = _copy_model(tiny_bert_dir, tmp_path / "broken", skip=("model.safetensors",))
    save_file(state, model_dir / "model.safetensors")
    with pytest.raises(jaxsim.WeightsError) as info:
        jaxsim.load_model(model_dir, use_cache=False)
    message = str(info.value)
    print(f"\n{message}")
    assert "\n" not in message
    assert str(model_dir) in message
    assert "layers.1.attention.key.kernel" in message  # missing (named by its params path)
    assert "encoder.layer.0.intermediate.dense.bias: (63,) (expected (64,))" in message
    # Linear weights: shapes in the checkpoint's (out, in) layout, as a user would inspect them.
    assert "encoder.layer.1.output.dense.weight: (32, 63) (expected (32, 64))" in message
    # ... and a mis-shaped tensor is not reported a second time as missing.
    assert "layers.0.mlp.intermediate.bias" not in message
    assert "layers.1.mlp.output.kernel" not in message
    assert "encoder.layer.0.attention.self.rotary.weight" in message  # unexpected
    assert "re-export" in message


def test_key_map_accepts_prefixed_keys_and_legacy_layer_norm_names(tiny_bert, tiny_bert_dir):
    state = load_file(tiny_bert_dir / "model.safetensors")
    renamed = {}
    for key, value in state.items():
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                           "LayerNorm.beta")
        renamed["bert." + key] = value
    _assert_params_identical(convert_state_dict(renamed, tiny_bert.config), tiny_bert.params)


def test_key_map_transposes_linear_weights_and_keeps_embeddings(tiny_bert, tiny_bert_dir):
    state = load_file(tiny_bert_dir / "model.safetensors")
    layer = tiny_bert.params["layers"][1]
    np.testing.assert_array_equal(
        np.asarray(layer["attention"]["query"]["kernel"]),
        state["encoder.layer.1.attention.self.query.weight"].T,
    )
    np.testing.assert_array_equal(
        np.asarray(layer["mlp"]["ln"]["scale"]), state["encoder.layer.1.output.LayerNorm.weight"]
    )
    np.testing.assert_array_equal(
        np.asarray(tiny_bert.params["embeddings"]["position"]),
        state["embeddings.position_embeddings.weight"],
    )


def test_sharded_safetensors_load_like_a_single_file(tmp_path, tiny_bert, tiny_bert_dir):
    hf_model = transformers.AutoModel.from_pretrained(str(tiny_bert_dir))
    model_dir = tmp_path / "sharded"
    hf_model.save_pretrained(model_dir, max_shard_size="1MB")
    assert (model_dir / "model.safetensors.index.json").is_file()
    assert len(list(model_dir.glob("*.safetensors"))) > 1
    sharded = jaxsim.load_model(model_dir, use_cache=False)
    _assert_params_identical(sharded.params, tiny_bert.params)


def test_sentence_transformers_folder_gives_minilm_mean_pooling_and_normalize(minilm, minilm_dir):
    source = resolve(None)
    assert source.root == minilm_dir.resolve() or source.root == minilm_dir
    assert (source.pooling, source.normalize, source.max_seq_length) == ("mean", True, 256)
    assert (minilm.pooling, minilm.normalize, minilm.tokenizer.max_length) == ("mean", True, 256)
    assert minilm.config.max_position_embeddings == 512  # the 256 comes from the folder


def test_plain_hugging_face_folder_defaults_to_mean_pooling_without_normalize(tiny_bert):
    assert tiny_bert.source.pooling is None and not tiny_bert.source.normalize
    assert (tiny_bert.pooling, tiny_bert.normalize) == ("mean", False)
    assert tiny_bert.tokenizer.max_length == tiny_bert.config.max_position_embeddings


def _sentence_transformers_folder(root: Path, model_dir: Path, pooling: dict,
                                  extra_modules: tuple[str, ...] = ()) -> Path:
    """The classic layout: the transformer in ``0_Transformer``, pooling in ``1_Pooling``."""
    _copy_model(model_dir, root / "0_Transformer")
    (root / "0_Transformer" / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 64, "do_lower_case": False})
    )
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
         "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
         "pooling_mode_mean_sqrt_len_tokens": False, **pooling}
    ))
    modules = [
        {"idx": 0, "name": "0", "path": "0_Transformer",
         "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
    ]
    for i, kind in enumerate(extra_modules, start=2):
        modules.append({"idx": i, "name": str(i), "path": f"{i}_{kind}",
                        "type": f"sentence_transformers.models.{kind}"})
    (root / "modules.json").write_text(json.dumps(modules))
    return root


def test_sentence_transformers_subfolder_layout_with_cls_pooling(tmp_path, tiny_bert_dir):
    root = _sentence_transformers_folder(tmp_path / "st", tiny_bert_dir,
                                         {"pooling_mode_cls_token": True})
    model = jaxsim.load_model(root, use_cache=False)
    assert model.source.model_dir == (root / "0_Transformer").resolve()
    assert (model.pooling, model.normalize, model.tokenizer.max_length) == ("cls", False, 64)
    text = "a cat sits on the mat"
    hf_model = transformers.AutoModel.from_pretrained(str(tiny_bert_dir)).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    with torch.inference_mode():
        expected = hf_model(**hf_tok([text], return_tensors="pt")).last_hidden_state[:, 0].numpy()
    ours = model.embed([text], batch_size=1)
    diff = float(np.abs(ours - expected).max())
    print(f"\ntiny BERT sentence-transformers CLS embedding: {diff:.2e}")
    assert diff <= 1e-5


@pytest.mark.parametrize(
    ("pooling", "extra_modules", "phrase"),
    [
        ({"pooling_mode_max_tokens": True}, (), "pooling_mode_max_tokens"),
        # sentence-transformers would concatenate both vectors: not a single cls/mean embedding.
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}, (), "exactly one"),
        ({"pooling_mode_mean_tokens": True}, ("Dense",), "'Dense'"),
    ],
)
def test_unsupported_sentence_transformers_pipelines_are_refused_up_front(
    tmp_path, tiny_bert_dir, pooling, extra_modules, phrase
):
    root = _sentence_transformers_folder(tmp_path / "st", tiny_bert_dir, pooling, extra_modules)
    with pytest.raises(jaxsim.UnsupportedModelError) as info:
        jaxsim.load_model(root, use_cache=False)
    message = str(info.value)
    assert phrase in message and "\n" not in message
    assert "no modules.json" in message  # names the way out


_SAVE_ON_ANOTHER_TOPOLOGY = """
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
from pathlib import Path
import jax, numpy as np
from jaxsim.convert.cache import save_params
from jaxsim.convert.keymap import abstract_params
from jaxsim.models.config import load_config
cfg = load_config(Path(sys.argv[1]))
last = jax.devices()[3]
params = jax.tree.map(
    lambda s: jax.device_put(np.arange(np.prod(s.shape), dtype=np.float32).reshape(s.shape), last),
    abstract_params(cfg))
save_params(Path(sys.argv[2]), params)
"""


def test_orbax_cache_written_on_another_device_topology_restores_here(tmp_path, tiny_bert_dir):
    # A cache converted on a 4-device host (or a GPU) and read on this 1-device CPU process: orbax
    # refuses ("Topology mismatch") unless the restore target names the local device.
    import subprocess
    import sys

    saved = tmp_path / "params"
    subprocess.run([sys.executable, "-c", _SAVE_ON_ANOTHER_TOPOLOGY, str(tiny_bert_dir), str(saved)],
                   check=True, cwd=Path(__file__).resolve().parents[1])
    config = jaxsim.models.config.load_config(tiny_bert_dir)
    params = convert_cache.restore_params(saved, config)
    for leaf in jax.tree.leaves(params):
        assert leaf.devices() == {jax.local_devices()[0]}
        np.testing.assert_array_equal(
            np.asarray(leaf), np.arange(leaf.size, dtype=np.float32).reshape(leaf.shape))


def test_converted_and_cached_params_share_one_compilation(tiny_bert_dir, tmp_path):
    # An uncommitted (freshly converted) and a committed (orbax-restored) array are different jit
    # keys: without placing both on the local device, every jitted function compiled twice.
    from jaxsim.models import packed_pooled_embeddings

    cached = jaxsim.load_model(tiny_bert_dir, weights_dir=tmp_path)  # converts, saves
    again = jaxsim.load_model(tiny_bert_dir, weights_dir=tmp_path)   # restores from orbax
    fresh = jaxsim.load_model(tiny_bert_dir, use_cache=False)
    for a, b in zip(jax.tree.leaves(again.params), jax.tree.leaves(fresh.params), strict=True):
        assert a.sharding == b.sharding and a.committed == b.committed
    before = packed_pooled_embeddings._cache_size()
    for model in (cached, again, fresh):
        model.embed(["a few words here"])
    assert packed_pooled_embeddings._cache_size() == before + 1
