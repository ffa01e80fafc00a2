"""``jaxsim.flax``: linen modules over the converted params equal the pure functions, ``init``
gives the converted layout, and the modules train inside an ``optax`` step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsim
import jaxsim.flax as jflax
from jaxsim.convert.keymap import abstract_params
from jaxsim.models import PLAIN_OPS, encoder_for, pair_logits_fn
from jaxsim.text import pad_batch
from tests import tiny_models

TEXTS = ["A man is playing a guitar.", "Hi!", "The cat sat on the mat near the window all afternoon."]
PAIRS = [("A cat sits on the mat.", "It is sleeping!"), ("Hi!", "A dog sleeps."),
         ("A man is playing a guitar.", "A person plays an instrument.")]
BUILDERS = {"bert": tiny_models.build_bert, "roberta": tiny_models.build_roberta,
            "mpnet": tiny_models.build_mpnet, "modernbert": tiny_models.build_modernbert}


@pytest.fixture(scope="module")
def models(tmp_path_factory, weights_dir):
    built: dict = {}

    def get(name: str, classifier: bool = False):
        if (name, classifier) not in built:
            folder = tmp_path_factory.mktemp(f"flax_{name}")
            path = BUILDERS[name](folder, classifier=classifier)
            built[name, classifier] = jaxsim.load_model(path, weights_dir=weights_dir)
        return built[name, classifier]
    return get


def _batch(model, encoded):
    batch = pad_batch(encoded, max(len(e) for e in encoded), pad_id=model.tokenizer.pad_token_id)
    return jnp.asarray(batch.ids), jnp.asarray(batch.type_ids), jnp.asarray(batch.mask)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_flax_encoder_equals_the_pure_functions_on_converted_params(name, models):
    model = models(name)
    ids, types, mask = _batch(model, model.encode(TEXTS))
    enc = encoder_for(model.config)
    expected = enc.encode_embeddings(model.params, model.config, PLAIN_OPS,
                                     enc.embed(model.params, model.config, PLAIN_OPS, ids, types), mask)
    hidden = jflax.Encoder(model.config).apply({"params": model.params}, ids, mask, types)
    np.testing.assert_allclose(hidden, expected, atol=1e-6)
    vectors = jflax.SentenceEncoder(model.config, pooling="mean").apply({"params": model.params}, ids, mask)
    np.testing.assert_allclose(vectors, model.embed(TEXTS, normalize=False, packing=False), atol=1e-5)


@pytest.mark.parametrize("name", ["bert", "modernbert"])
def test_flax_init_gives_the_converted_layout(name, models):
    model = models(name)
    ids, _, mask = _batch(model, model.encode(TEXTS))
    params = jflax.Encoder(model.config).init(jax.random.PRNGKey(0), ids, mask)["params"]
    expected = abstract_params(model.config)
    assert jax.tree.structure(params) == jax.tree.structure(expected)
    assert jax.tree.map(lambda a: a.shape, params) == jax.tree.map(lambda a: a.shape, expected)


@pytest.mark.parametrize("name", ["roberta", "modernbert"])
def test_flax_pair_classifier_equals_pair_logits_and_trains_in_an_optax_step(name, models):
    model = models(name, classifier=True)
    encoded = [model.tokenizer.encode_pair(a, b)[0] for a, b in PAIRS]
    ids, types, mask = _batch(model, encoded)
    labels = jnp.array([0, 1, 2])
    module = jflax.PairClassifier(model.config, dropout_rate=0.1)
    logits = module.apply({"params": model.params}, ids, mask, types)
    np.testing.assert_allclose(logits, pair_logits_fn(model.params, model.config, ids, types, mask),
                               atol=1e-6)

    optimizer = optax.adamw(1e-3)

    @jax.jit
    def step(params, opt_state, key):
        def loss_fn(p):
            out = module.apply({"params": p}, ids, mask, types, deterministic=False, rngs={"dropout": key})
            return optax.softmax_cross_entropy_with_integer_labels(out, labels).mean()
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    params, opt_state = model.params, optimizer.init(model.params)
    losses = []
    for key in jax.random.split(jax.random.PRNGKey(0), 30):
        params, opt_state, loss = step(params, opt_state, key)
        losses.append(float(loss))
    print(f"\n{name} flax PairClassifier loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert losses[-1] < 0.5 * losses[0]
    assert jax.tree.structure(params) == jax.tree.structure(model.params)
