"""Adapters that put real frameworks (PyTorch, optax) behind the course-style target interface."""
