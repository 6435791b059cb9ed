"""The benchmarks: run each from the repository root as ``python -m bench.<name> …``; each writes its
results under ``bench/results/`` (JSON and Markdown), which are committed."""
