"""Benchmarks and independent PyTorch references (not part of the installed ``jaxsim`` package)."""
