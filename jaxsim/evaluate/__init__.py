"""Evaluation of explanations: sanity checks, perturbation curves, agreement metrics."""
