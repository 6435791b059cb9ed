"""BFR Explorer core: flow matching, ODE integration, LFR / DFR refiners, metrics, bundles."""

__version__ = "0.1.0"
