"""Training: the optimizer recipe and the compiled training step."""
