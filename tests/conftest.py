"""Shared fixtures: the embedded MiniLM and tiny random HF models (built once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jaxsim
from jaxsim.convert.source import default_model_dir
from tests import tiny_models

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# In-process CLI calls must not write the user's compilation cache (tests that want one pass a folder).
os.environ.setdefault("JAXSIM_COMPILE_CACHE", "off")


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return default_model_dir()


@pytest.fixture(scope="session")
def minilm(weights_dir):
    return jaxsim.load_model(weights_dir=weights_dir)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return tiny_models.build_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_bert_classifier_dir(tmp_path_factory) -> Path:
    return tiny_models.build_bert(tmp_path_factory.mktemp("tiny_bert_cls"), classifier=True)


@pytest.fixture(scope="session")
def tiny_gpt_neo_dir(tmp_path_factory) -> Path:
    return tiny_models.build_gpt_neo(tmp_path_factory.mktemp("tiny_gpt_neo"))


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir, weights_dir):
    return jaxsim.load_model(tiny_bert_dir, weights_dir=weights_dir)


@pytest.fixture(scope="session")
def tiny_gpt_neo(tiny_gpt_neo_dir, weights_dir):
    return jaxsim.load_model(tiny_gpt_neo_dir, weights_dir=weights_dir)
