"""Training DFCAN and DFGAN: configs, data sources, losses, the trainer, the demo weights."""
