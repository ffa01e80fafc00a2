"""jaxsim: explain why a transformer finds two texts similar, in JAX.

    import jaxsim
    model = jaxsim.load_model()                 # embedded all-MiniLM-L6-v2
    model.embed(["a sentence", "another"])      # f32[2, 384]
"""

from jaxsim.classifier import load_classifier
from jaxsim.errors import (
    InputTextError,
    JaxsimError,
    ModelNotFoundError,
    UnsupportedModelError,
    WeightsError,
)
from jaxsim.model import Model, load_model

__version__ = "0.1.0"

__all__ = [
    "InputTextError", "JaxsimError", "Model", "ModelNotFoundError", "UnsupportedModelError",
    "WeightsError", "load_classifier", "load_model",
]
