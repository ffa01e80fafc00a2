"""GMASK on cross-encoders of the other families: RoBERTa-style pairs ``<s> a </s></s> b </s>``
(two separators) and DistilBERT/MPNet/ModernBERT heads, checked against the plain model."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxsim
from jaxsim.classifier import as_classifier
from jaxsim.explain import explain_pair
from jaxsim.explain import gmask as gm
from jaxsim.models import pair_logits
from tests import tiny_models

SMALL = dict(k=6, steps=4, samples=8)
PAIR = ("A cat sits on the warm mat today.", "The dog is sleeping on a rug.")


@pytest.fixture(scope="module", params=["roberta", "xlm", "distilbert", "mpnet", "modernbert"])
def cross_encoder(request, tmp_path_factory, weights_dir):
    family = request.param
    folder = tmp_path_factory.mktemp(f"gmask_{family}")
    if family in ("roberta", "xlm"):
        tiny_models.build_roberta(folder, xlm=family == "xlm", classifier=True)
    else:
        getattr(tiny_models, f"build_{family}")(folder, classifier=True)
    return as_classifier(jaxsim.load_model(folder, weights_dir=weights_dir))


def test_the_masked_model_with_every_piece_kept_is_the_classifier(cross_encoder):
    clf = cross_encoder
    enc, _ = clf.model.tokenizer.encode_pair(*PAIR)
    ids, types = jnp.asarray(enc.ids), jnp.asarray(enc.type_ids)
    n = len(enc)
    emb = gm._embed_one(clf.params, clf.config, ids, types)
    ones = gm.masked_logits(clf.params, clf.config, emb, jnp.ones(n, bool), jnp.ones((1, n)))
    expected = pair_logits(clf.params, ids[None], types[None], jnp.ones((1, n), bool), config=clf.config)
    np.testing.assert_allclose(ones, expected, atol=1e-5)


def test_gmask_keeps_the_pair_template_in_the_shortened_input(cross_encoder):
    clf = cross_encoder
    enc, segment = clf.model.tokenizer.encode_pair(*PAIR)
    between = gm.separators_between(segment)
    [one] = gm.gmask_encoded(clf, [(enc, segment)], settings=gm.GmaskSettings(**SMALL))
    src, side = one["short_source"], one["short_side"]
    c1, c2 = int((side == 0).sum()), int((side == 1).sum())
    assert c1 > 0 and c2 > 0
    assert src[0] == 0                                                   # <s> / [CLS]
    seps = np.flatnonzero(segment < 0)[1:]                               # the specials after the first
    np.testing.assert_array_equal(src[c1 + 1: c1 + 1 + between], seps[:between])
    assert src[c1 + 1 + between + c2] == seps[-1]
    assert set(segment[src[side == 0]]) == {0} and set(segment[src[side == 1]]) == {1}
    result = explain_pair(clf, *PAIR, method="gmask", **SMALL)
    assert result.method == "gmask" and (result.groups >= 0).sum() == c1 + c2
