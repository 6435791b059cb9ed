"""Run the CLI in this process as a user runs it, for the CLI tests."""

import contextlib
import io
import subprocess

from bfr_core.cli.main import main


def cli(*args) -> subprocess.CompletedProcess:
    """``python -m bfr_core --quiet ARGS`` run in this process (``main``), exit status and output captured:
    what a user sees, without an interpreter start per call (the entry point itself: the help test)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(["--quiet", *args])
        except SystemExit as e:  # argparse: --help, or a malformed command line
            rc = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())
