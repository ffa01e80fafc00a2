"""sentence-transformers prompts (e5's ``query: ``): applied by name before the texts, their pieces
kept as tokens of the explanation but in no word, and refused by name when the model has none."""

from __future__ import annotations

import json

import numpy as np
import pytest

import jaxsim
from jaxsim.cli import main
from jaxsim.errors import OptionError
from tests import tiny_models

PAIR = ("a cat sat on the mat", "the dog lay on a rug")


@pytest.fixture(scope="module")
def prompted(tmp_path_factory, weights_dir):
    folder = tiny_models.build_bert(tmp_path_factory.mktemp("prompted_bert"))
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "passage": "passage: "}}), encoding="utf-8")
    return jaxsim.load_model(folder, weights_dir=weights_dir)


def test_a_named_prompt_embeds_exactly_as_the_prompt_written_before_the_text(prompted):
    texts = list(PAIR)
    with_prompt = prompted.embed(texts, prompt="query")
    written = prompted.embed([f"query: {t}" for t in texts])
    np.testing.assert_array_equal(with_prompt, written)
    assert not np.allclose(with_prompt, prompted.embed(texts))


def test_explaining_with_a_prompt_keeps_its_pieces_as_tokens_but_in_no_word(prompted):
    result = prompted.explain(*PAIR, prompt="query")
    written = prompted.explain(f"query: {PAIR[0]}", f"query: {PAIR[1]}")
    np.testing.assert_allclose(result.relevance, written.relevance, rtol=1e-6, atol=1e-9)
    assert result.tokens_a == written.tokens_a                    # the prompt's pieces are tokens
    assert result.words_a == PAIR[0].split() and "query" in written.words_a[0]
    words_a, _, matrix = result.word_relevance()
    assert words_a == PAIR[0].split() and matrix.shape == (6, 6)
    record = json.loads(result.to_json())
    assert record["prompt_a"] == record["prompt_b"] == "query: "
    assert "prompt before each text: 'query: '" in result.show()
    assert "prompt_a" not in json.loads(prompted.explain(*PAIR).to_json())  # no prompt, no key


def test_an_unknown_prompt_is_refused_with_the_names_the_model_has(prompted, tiny_bert):
    with pytest.raises(OptionError, match=r"no prompt 'question'.*\['passage', 'query'\]"):
        prompted.embed(["a text"], prompt="question")
    with pytest.raises(OptionError, match="defines none"):
        tiny_bert.explain(*PAIR, prompt="query")


def test_the_cli_applies_the_prompt_and_refuses_it_for_other_methods(prompted, capsys):
    folder = str(prompted.source.model_dir)
    assert main(["explain", "--model", folder, "--prompt", "query", "--format", "json", *PAIR]) == 0
    assert json.loads(capsys.readouterr().out)["prompt_a"] == "query: "
    assert main(["explain", "--model", folder, "--method", "bti", "--prompt", "query", *PAIR]) == 2
    assert "--prompt applies to the similarity methods" in capsys.readouterr().err
