"""The command line, ``python -m bfr_core <command>``: ``main`` builds the parser; ``stages``, ``stored`` and
``sampling`` hold the commands; ``commands`` the helpers every training command shares."""
