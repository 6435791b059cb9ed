"""Evaluation: sample-quality metrics, the Fréchet distance, Inception FID, references and scored rows."""
