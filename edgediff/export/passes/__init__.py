"""Graph passes applied to a ``torch.export`` program before it is handed to an exporter."""
