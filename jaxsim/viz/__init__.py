"""Views of explanations: terminal text, matplotlib figures, self-contained HTML pages."""
