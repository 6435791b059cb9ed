import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bfr_core.cli.main import main  # noqa: E402


WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # pytest-xdist's workers (pyproject: -n 2)


# The test files that take longest (seconds of test time, idle, measured on the 2-core machine with
# `python -m pytest --junitxml=…`): they start first, so that the two workers finish together (longest first);
# the rest keep their order. pyproject's --no-loadscope-reorder makes pytest-xdist follow this order.
LONGEST_FIRST = (
    "test_browser_tabs.py",  # 87
    "test_browser.py",  # 55 (with test_browser_play.py: 107)
    "test_browser_play.py",  # 52
    "test_distributed.py",  # 38
    "test_app_views.py",  # 18
    "test_views_latents.py",  # 17
    "test_cli.py",  # 13
    "test_cifar_app.py",  # 13
    "test_cifar.py",  # 13
    "test_shutdown.py",  # 13
    "test_inception_real.py",  # 11
    "test_inception.py",  # 11
)


def pytest_collection_modifyitems(items):
    """Run the files of LONGEST_FIRST first, in that order (a stable sort: a file keeps its tests' order)."""
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(autouse=True)
def _threads():
    """Each test on an equal share of the machine's cores (2 threads alone; 1 each beside another worker)."""
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 2) // WORKERS)))


def build_tiny_bundle(out: Path) -> None:
    """A complete digits bundle trained for a few steps through the CLI (seconds)."""
    steps = ["--steps", "60", "--save-every", "20"]
    for argv in (
        ["train-base", "--dataset", "digits", "--out", str(out), *steps, "--snapshot-at", "30"],
        ["train-classifier", "--bundle", str(out), *steps],
        ["invert", "--bundle", str(out), "--n", "300"],
        ["train-lfr", "--bundle", str(out), "--alpha-max", "0.5", "--alpha", "0.2", *steps],
        ["reflow-lfr", "--bundle", str(out), "--pairs", "256", *steps],
        ["train-dfr", "--bundle", str(out), "--pool", "500", *steps],
    ):
        assert main(["--quiet", *argv]) == 0, argv


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, worker_id) -> Path:
    """The tiny digits bundle, built once a test run and copied into each worker (tests add and remove
    files in their copy). Under pytest-xdist the first worker to ask builds it into the run's shared
    temporary folder while holding a file lock; the other waits for it instead of training its own."""
    own = tmp_path_factory.mktemp("bundle") / "digits"
    if worker_id == "master":  # one process (-n 0): nobody to share with
        build_tiny_bundle(own)
        return own
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, above every worker's own
    with FileLock(str(shared / "tiny_bundle.lock")):
        if not (shared / "tiny_bundle").exists():  # renamed into place only once complete
            shutil.rmtree(shared / "tiny_bundle_building", ignore_errors=True)  # a build that failed
            build_tiny_bundle(shared / "tiny_bundle_building")
            (shared / "tiny_bundle_building").rename(shared / "tiny_bundle")
    shutil.copytree(shared / "tiny_bundle", own)
    return own


@pytest.fixture(scope="session")
def server():
    """The app launched in-process on a free loopback port; yields its URL."""
    from app_server import launch

    from app import background

    demo, url = launch()
    yield url
    demo.close()
    still_running = background.stop(timeout=120.0)
    assert not still_running, f"the app's work did not stop: {still_running}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """When a test of the in-process app fails, add every thread's stack to its report: a browser test that
    times out then shows what the server was doing (a stuck request, a lock) instead of a bare timeout."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "server" in getattr(item, "fixturenames", ()):
        import faulthandler
        import tempfile

        with tempfile.TemporaryFile("w+") as f:
            faulthandler.dump_traceback(f, all_threads=True)
            f.seek(0)
            report.sections.append(("the app's threads when the test failed", f.read()[-20000:]))
