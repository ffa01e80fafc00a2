"""The errors jaxsim raises for bad input. Each message is one line that names the fix.

The CLI prints ``error: <message>`` for these and exits with status 2, never a traceback.
"""

from __future__ import annotations


class JaxsimError(Exception):
    """Base class: a problem with what the user passed in (not a bug in jaxsim)."""


class UnsupportedModelError(JaxsimError):
    """The config asks for something the encoders do not implement."""


class ModelNotFoundError(JaxsimError):
    """The model name or path cannot be resolved to local files."""


class WeightsError(JaxsimError):
    """Missing, corrupt, mis-shaped or unsafe (pickle) weights."""


class InputTextError(JaxsimError):
    """Empty, whitespace-only or undecodable input text."""


class NoContentError(InputTextError):
    """A text with no content to embed or explain: only zero-width, control or U+FFFD
    characters, or only special tokens after tokenisation (``no_content`` in corpus runs)."""


class OptionError(JaxsimError, ValueError):
    """An option outside its allowed values (a method, pooling, rule or level name, a size).

    Also a ``ValueError``, so callers that caught the bare ``ValueError`` of earlier versions
    still do."""
