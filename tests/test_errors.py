"""Bad input raises the right ``jaxsim`` error with a one-line message that names the fix."""

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
from jaxsim.cli import main
from jaxsim.text import TruncationWarning
from tests.tiny_models import TOKENIZER_FILES


def _one_line(err: pytest.ExceptionInfo, *phrases: str) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    for phrase in phrases:
        assert phrase in message, (phrase, message)
    return message


def _model_folder(src: Path, dst: Path, *, weights: bool = True) -> Path:
    """A copy of ``src``'s config and tokenizer (and, if asked, its safetensors weights)."""
    dst.mkdir(parents=True)
    names = ("config.json",) + TOKENIZER_FILES + (("model.safetensors",) if weights else ())
    for name in names:
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    return dst


# --- text --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \t\n  "])
def test_empty_or_whitespace_text_raises_input_text_error(minilm, text):
    with pytest.raises(jaxsim.InputTextError) as info:
        minilm.embed(["a fine sentence", text])
    _one_line(info, "text 1", "empty or whitespace-only", "non-empty string")
    with pytest.raises(jaxsim.InputTextError) as info:
        minilm.similarity("a fine sentence", text)
    _one_line(info, "non-empty string")
    with pytest.raises(jaxsim.InputTextError) as info:
        minilm.tokenizer.encode_pair(text, "a fine sentence")
    _one_line(info, "text a", "non-empty string")


def test_non_string_text_raises_input_text_error(minilm):
    with pytest.raises(jaxsim.InputTextError) as info:
        minilm.embed(["a fine sentence", None])
    _one_line(info, "must be a string", "NoneType")


def test_text_longer_than_the_model_is_truncated_with_a_warning(minilm, minilm_dir):
    long_text = "the committee discussed the budget at length " * 60
    max_length = minilm.tokenizer.max_length
    with pytest.warns(TruncationWarning, match="truncated to 256"):
        encoded = minilm.tokenizer.encode(long_text)
    assert max_length == 256 and len(encoded) == max_length and encoded.truncated
    # The same tokens sentence-transformers keeps: the first 255 pieces, then [SEP].
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    expected = hf_tok(long_text, truncation=True, max_length=max_length)["input_ids"]
    assert encoded.ids.tolist() == expected
    assert encoded.tokens[-1] == "[SEP]"

    with pytest.warns(TruncationWarning):
        pair, segment = minilm.tokenizer.encode_pair(long_text, long_text)
    assert len(pair) == max_length and (segment == 1).any()

    with pytest.warns(TruncationWarning):
        vector = minilm.embed([long_text], batch_size=3)
    assert vector.shape == (1, 384) and np.isfinite(vector).all()


# --- model names and folders ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("no-such-model-anywhere", "pass a local model directory"),
        ("./no/such/folder", "pass a local model directory"),
        ("no-such-org/no-such-model", "jaxsim never downloads"),
    ],
)
def test_unknown_model_raises_model_not_found(name, phrase):
    with pytest.raises(jaxsim.ModelNotFoundError) as info:
        jaxsim.load_model(name)
    _one_line(info, phrase)


def test_model_path_to_a_file_raises_model_not_found(tiny_bert_dir):
    with pytest.raises(jaxsim.ModelNotFoundError) as info:
        jaxsim.load_model(tiny_bert_dir / "config.json")
    _one_line(info, "pass the model's directory")


def test_directory_without_config_raises_model_not_found(tmp_path):
    with pytest.raises(jaxsim.ModelNotFoundError) as info:
        jaxsim.load_model(tmp_path)
    _one_line(info, "no config.json", "pass the folder that holds config.json")


def test_directory_without_weights_raises_weights_error(tmp_path, tiny_bert_dir):
    folder = _model_folder(tiny_bert_dir, tmp_path / "no_weights", weights=False)
    with pytest.raises(jaxsim.WeightsError) as info:
        jaxsim.load_model(folder, use_cache=False)
    _one_line(info, "has no weights", "model.safetensors")


@pytest.fixture(scope="module")
def pickle_only_dir(tiny_bert_dir, tmp_path_factory) -> Path:
    # transformers 5 ignores save_pretrained(safe_serialization=False) and always writes
    # safetensors, so the pickle checkpoint is written the way old transformers did: torch.save.
    folder = _model_folder(tiny_bert_dir, tmp_path_factory.mktemp("pickle") / "model",
                           weights=False)
    hf_model = transformers.AutoModel.from_pretrained(str(tiny_bert_dir))
    torch.save(hf_model.state_dict(), folder / "pytorch_model.bin")
    return folder


def test_pickle_only_checkpoint_is_refused_without_opt_in(pickle_only_dir):
    with pytest.raises(jaxsim.WeightsError) as info:
        jaxsim.load_model(pickle_only_dir, use_cache=False)
    _one_line(info, "pytorch_model.bin", "allow_pickle=True", "safetensors")


def test_pickle_only_checkpoint_loads_with_opt_in_and_matches_safetensors(pickle_only_dir,
                                                                          tiny_bert):
    model = jaxsim.load_model(pickle_only_dir, allow_pickle=True, use_cache=False)
    assert jax.tree.structure(model.params) == jax.tree.structure(tiny_bert.params)
    for ours, theirs in zip(jax.tree.leaves(model.params), jax.tree.leaves(tiny_bert.params),
                            strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_corrupt_safetensors_raises_weights_error_naming_the_file(tmp_path, tiny_bert_dir):
    folder = _model_folder(tiny_bert_dir, tmp_path / "corrupt", weights=False)
    (folder / "model.safetensors").write_bytes(b"\x00\xffnot a safetensors file" * 10)
    with pytest.raises(jaxsim.WeightsError) as info:
        jaxsim.load_model(folder, use_cache=False)
    _one_line(info, str(folder / "model.safetensors"), "not a readable safetensors file",
              "re-download")


def _save_modified_weights(src: Path, dst: Path, edit) -> Path:
    folder = _model_folder(src, dst, weights=False)
    state = load_file(src / "model.safetensors")
    edit(state)
    save_file(state, folder / "model.safetensors")
    return folder


def test_missing_tensor_raises_weights_error_naming_it(tmp_path, tiny_bert_dir):
    def drop(state):
        del state["encoder.layer.0.output.LayerNorm.weight"]

    folder = _save_modified_weights(tiny_bert_dir, tmp_path / "missing", drop)
    with pytest.raises(jaxsim.WeightsError) as info:
        jaxsim.load_model(folder, use_cache=False)
    _one_line(info, "missing ['layers.0.mlp.ln.scale']", "re-export")


def test_misshaped_tensor_raises_weights_error_naming_it(tmp_path, tiny_bert_dir):
    def reshape(state):
        state["embeddings.position_embeddings.weight"] = np.zeros((64, 32), np.float32)

    folder = _save_modified_weights(tiny_bert_dir, tmp_path / "misshaped", reshape)
    with pytest.raises(jaxsim.WeightsError) as info:
        jaxsim.load_model(folder, use_cache=False)
    _one_line(info, "embeddings.position_embeddings.weight: (64, 32) (expected (128, 32))")


def test_nan_in_weights_raises_weights_error_naming_the_tensor(tmp_path, tiny_bert_dir):
    def poison(state):
        state["encoder.layer.1.attention.self.value.weight"][3, 5] = np.nan

    folder = _save_modified_weights(tiny_bert_dir, tmp_path / "nan", poison)
    with pytest.raises(jaxsim.WeightsError) as info:
        jaxsim.load_model(folder, use_cache=False)
    _one_line(info, "NaN/inf values in ['encoder.layer.1.attention.self.value.weight']")


# --- unsupported configs ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("base", "changes", "phrase"),
    [
        ("tiny_bert_dir", {"position_embedding_type": "relative_key"},
         "position_embedding_type='relative_key'"),
        ("tiny_bert_dir", {"hidden_act": "relu"}, "hidden_act='relu'"),
        ("tiny_bert_dir", {"is_decoder": True}, "is_decoder"),
        ("tiny_bert_dir", {"model_type": "t5"}, "model_type='t5' is not supported"),
        ("tiny_gpt_neo_dir", {"activation_function": "relu"}, "activation_function='relu'"),
        ("tiny_gpt_neo_dir", {"attention_layers": ["global", "sparse", "global", "local"]},
         "attention_layers='sparse'"),
    ],
)
def test_unsupported_config_is_refused_before_weights_are_read(
    base, changes, phrase, request, tmp_path
):
    # No weights in the folder: the config must be refused first, not a missing file reported.
    folder = _model_folder(request.getfixturevalue(base), tmp_path / "model", weights=False)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(jaxsim.UnsupportedModelError) as info:
        jaxsim.load_model(folder, use_cache=False)
    _one_line(info, phrase, "jaxsim")


def test_corrupt_or_incomplete_config_json_raises_unsupported_model(tmp_path, tiny_bert_dir):
    folder = _model_folder(tiny_bert_dir, tmp_path / "model", weights=False)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(jaxsim.UnsupportedModelError) as info:
        jaxsim.load_model(folder, use_cache=False)
    _one_line(info, "is not valid JSON", "re-download")
    config = json.loads((tiny_bert_dir / "config.json").read_text())
    del config["hidden_size"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(jaxsim.UnsupportedModelError) as info:
        jaxsim.load_model(folder, use_cache=False)
    _one_line(info, "'hidden_size'", "re-export")


# --- command line ---------------------------------------------------------------------------------

def _cli_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_cli_embed_of_non_utf8_file_exits_2_with_one_error_line(tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\ncaf\xe9 au lait\n".encode("latin-1"))
    line = _cli_error(capsys, ["embed", "--input", str(path), "--out", str(tmp_path / "o.npy")])
    assert "not UTF-8" in line and "line 2" in line and "iconv" in line
    assert not (tmp_path / "o.npy").exists()


def test_cli_embed_of_missing_or_blank_file_exits_2(tmp_path, capsys):
    out = str(tmp_path / "o.npy")
    line = _cli_error(capsys, ["embed", "--input", str(tmp_path / "absent.txt"), "--out", out])
    assert "cannot read" in line
    blank = tmp_path / "blank.txt"
    blank.write_text("\n   \n\t\n")
    line = _cli_error(capsys, ["embed", "--input", str(blank), "--out", out])
    assert "line 1 is blank" in line
    line = _cli_error(capsys, ["embed", "--input", str(blank), "--out", out, "--skip-blank"])
    assert "no non-empty lines" in line


def test_cli_refuses_pickle_without_allow_pickle_flag(pickle_only_dir, tmp_path, capsys):
    argv = ["convert", "--model", str(pickle_only_dir), "--weights-dir", str(tmp_path)]
    line = _cli_error(capsys, argv)
    assert "--allow-pickle" in line
    assert main(argv + ["--allow-pickle"]) == 0
