"""Infrastructure: datasets, checkpoints and model cards, devices, torchrun, pictures."""
