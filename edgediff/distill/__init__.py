"""Distillation: smaller stand-ins for a model's components, trained against the originals."""
