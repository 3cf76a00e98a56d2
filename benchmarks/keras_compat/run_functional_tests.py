"""Keras's own functional-model tests, run on dagjax with only their imports rewritten.

    PYTHONPATH=. .venv/bin/python benchmarks/keras_compat/run_functional_tests.py

Reads ``keras/src/models/functional_test.py`` from the installed Keras, rewrites its imports
(``rewrite.py``: the one change allowed), writes the result to a temporary folder and runs it
under pytest, printing each test's result with the first line of its error, and the totals.
``--show`` prints the rewritten file instead; ``-k EXPR`` selects tests as pytest's ``-k``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # so ``keras_compat`` imports as a package

import pytest  # noqa: E402

from keras_compat.report import Results  # noqa: E402
from keras_compat.rewrite import rewrite  # noqa: E402


def keras_functional_test() -> pathlib.Path:
    """The installed Keras's test file, found without importing Keras."""
    for entry in sys.path:
        candidate = pathlib.Path(entry) / "keras" / "src" / "models" / "functional_test.py"
        if candidate.is_file():
            return candidate
    raise SystemExit("keras/src/models/functional_test.py not found: install keras (pip install keras)")


class _Collector:
    """A pytest plugin keeping each test's outcome and first error line."""

    def __init__(self, results: Results):
        self.results = results

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            name = report.nodeid.split("::")[-1]
            if report.passed:
                self.results.add(name, True)
            elif report.skipped:
                self.results.add(name, False, "skipped")
            else:
                crash = getattr(report.longrepr, "reprcrash", None)
                self.results.add(name, False, crash.message if crash else str(report.longrepr))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print the rewritten file and stop")
    parser.add_argument("-k", default=None, help="pytest -k expression")
    args = parser.parse_args(argv)
    source = rewrite(keras_functional_test().read_text())
    if args.show:
        print(source)
        return 0
    results = Results("Keras functional_test.py on dagjax")
    with tempfile.TemporaryDirectory() as tmp:
        pathlib.Path(tmp, "test_functional_on_dagjax.py").write_text(source)
        pathlib.Path(tmp, "pytest.ini").write_text("[pytest]\n")
        os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])
        pytest_args = [tmp, "-q", "-p", "no:cacheprovider", "--no-header", "-rN", "--tb=no",
                       "-c", str(pathlib.Path(tmp, "pytest.ini")), "--rootdir", tmp]
        if args.k:
            pytest_args += ["-k", args.k]
        pytest.main(pytest_args, plugins=[_Collector(results)])
    results.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
