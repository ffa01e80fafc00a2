"""jaxsim: explain why a transformer finds two texts similar, in JAX.

    import jaxsim
    model = jaxsim.load_model()                 # embedded all-MiniLM-L6-v2
    model.embed(["a sentence", "another"])      # f32[2, 384]
    index = jaxsim.Index.build(model, ["a document", "another"], "idx")
    index.search("a query", k=1, explain=True)[0].top_pairs(3)
"""

from jaxsim.classifier import load_classifier
from jaxsim.errors import (
    InputTextError,
    JaxsimError,
    ModelNotFoundError,
    UnsupportedModelError,
    WeightsError,
)
from jaxsim.index import Index
from jaxsim.model import Model, load_model

__version__ = "0.1.0"

__all__ = [
    "Index", "InputTextError", "JaxsimError", "Model", "ModelNotFoundError", "UnsupportedModelError",
    "WeightsError", "load_classifier", "load_model",
]
