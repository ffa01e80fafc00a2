"""The ``jaxsim`` command line gives what the Python API gives."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxsim.cli import build_parser, compile_cache_dir, main

LINES = ["A man is playing a guitar.", "A person plays an instrument.", "The sky is blue today."]


def _subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def test_cli_embed_writes_the_same_vectors_as_model_embed(minilm, weights_dir, tmp_path, capsys):
    source = tmp_path / "sentences.txt"
    source.write_text(LINES[0] + "\n\n" + "\n".join(LINES[1:]) + "\n", encoding="utf-8")
    out = tmp_path / "emb.npy"
    argv = ["embed", "--input", str(source), "--out", str(out), "--weights-dir", str(weights_dir),
            "--batch-size", "3"]
    assert main(argv) == 2  # a blank line is refused, naming it (rows must match lines)
    assert "line 2 is blank" in capsys.readouterr().err
    assert main(argv + ["--skip-blank"]) == 0
    assert "wrote 3 x 384" in capsys.readouterr().out
    assert (tmp_path / "emb.lines.txt").read_text() == "1\n3\n4\n"  # the kept lines
    vectors = np.load(out)
    expected = minilm.embed(LINES, batch_size=3)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_cli_embed_honours_model_and_pooling(tiny_bert, tiny_bert_dir, weights_dir, tmp_path):
    source = tmp_path / "sentences.txt"
    source.write_text("\n".join(LINES), encoding="utf-8")
    out = tmp_path / "emb.npy"
    assert main(["embed", "--input", str(source), "--out", str(out), "--model", str(tiny_bert_dir),
                 "--pooling", "cls", "--weights-dir", str(weights_dir), "--batch-size", "3"]) == 0
    expected = tiny_bert.with_pooling("cls").embed(LINES, batch_size=3)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)


def test_cli_similarity_prints_model_similarity(minilm, weights_dir, capsys):
    a, b = LINES[0], LINES[1]
    assert main(["similarity", a, b, "--weights-dir", str(weights_dir)]) == 0
    printed = float(capsys.readouterr().out.strip())
    expected = minilm.similarity(a, b)
    assert abs(printed - expected) <= 1e-6  # printed with 6 decimals
    vectors = minilm.embed([a, b], batch_size=2)
    assert abs(expected - float(vectors[0] @ vectors[1])) <= 1e-6
    assert 0.3 < expected < 1.0  # related sentences, not identical


def test_cli_similarity_json_names_the_model_and_texts(minilm, weights_dir, capsys):
    a, b = LINES[0], "Un homme joue à la guitare."  # non-ASCII text comes back unchanged
    assert main(["similarity", "--format", "json", a, b, "--weights-dir", str(weights_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"model": minilm.name, "pooling": minilm.pooling, "text_a": a, "text_b": b,
                   "similarity": pytest.approx(minilm.similarity(a, b), abs=1e-6)}


def test_cli_convert_reports_the_cache_folder(tiny_bert_dir, tmp_path, capsys):
    assert main(["convert", "--model", str(tiny_bert_dir), "--weights-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    cache = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    assert len(cache) == 1 and str(cache[0]) in out


def test_cli_doctor_reports_versions_devices_and_cache(weights_dir, monkeypatch, capsys):
    monkeypatch.setenv("JAXSIM_WEIGHTS_DIR", str(weights_dir))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "jax " in out and "flax " in out and "devices:" in out
    assert "default model: " in out and "missing" not in out
    assert str(weights_dir) in out


def test_cli_help_exits_0_and_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in _subcommands():
        assert name in out


@pytest.mark.parametrize("command", _subcommands())
def test_cli_subcommand_help_exits_0_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"jaxsim {command}" in out and "example" in out


def test_cli_without_subcommand_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_compile_cache_dir_follows_flag_then_env_then_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("JAXSIM_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache_dir(None) == tmp_path / "xdg" / "jaxsim" / "xla"
    assert compile_cache_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert compile_cache_dir("off") is None
    monkeypatch.setenv("JAXSIM_COMPILE_CACHE", str(tmp_path / "env"))
    assert compile_cache_dir(None) == tmp_path / "env"
    assert compile_cache_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    monkeypatch.setenv("JAXSIM_COMPILE_CACHE", "off")
    assert compile_cache_dir(None) is None


def test_cli_compile_cache_is_written_then_reused_with_the_same_result(weights_dir, tmp_path):
    cache = tmp_path / "xla"
    command = [sys.executable, "-m", "jaxsim.cli", "--compile-cache", str(cache), "explain",
               "--weights-dir", str(weights_dir), "--format", "json",
               "A man is playing a guitar.", "A person plays an instrument."]
    env = {**os.environ, "JAXSIM_COMPILE_CACHE": "off"}  # the flag wins over the environment
    first = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    entries = sorted(p.name for p in cache.iterdir())
    assert any("token_relevance" in name for name in entries), entries
    second = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    assert sorted(p.name for p in cache.iterdir()) == entries  # hit: nothing new compiled
    assert json.loads(first.stdout)["relevance"] == json.loads(second.stdout)["relevance"]
