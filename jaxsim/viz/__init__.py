"""Views of explanations: terminal text, matplotlib figures."""
