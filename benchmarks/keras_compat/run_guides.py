"""The keras.io guides' examples, run on dagjax with only their imports rewritten.

    PYTHONPATH=. .venv/bin/python benchmarks/keras_compat/run_guides.py            # on dagjax
    PYTHONPATH=. .venv/bin/python benchmarks/keras_compat/run_guides.py --keras    # the same files on Keras

Each file in ``guides/`` is one example of the guides "The Functional API", "Training &
evaluation with the built-in methods", "Writing your own callbacks" and "Customizing what
happens in fit() with JAX", written as Keras code (synthetic data in place of downloads, small
sizes). The runner rewrites its imports
(``rewrite.py``) and runs it in this process in a fresh namespace and a fresh temporary
working folder (files it saves go there), its output hidden unless ``-v``; it prints each
example's result with the first line of its error, and the totals. ``--keras`` runs the files
unchanged on Keras 3 (JAX backend), which checks that they are the guides' working code.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pathlib
import sys
import tempfile
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # so ``keras_compat`` imports as a package
os.environ.setdefault("KERAS_BACKEND", "jax")

from keras_compat.report import Results  # noqa: E402
from keras_compat.rewrite import rewrite  # noqa: E402


def run_one(path: pathlib.Path, on_keras: bool, verbose: bool) -> str | None:
    """Runs one example; None when it passes, else the error's first line."""
    source = path.read_text()
    if not on_keras:
        source = rewrite(source)
        import dagjax

        dagjax.clear_session()
    out = io.StringIO()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(out)
            with sink, contextlib.redirect_stderr(out) if not verbose else contextlib.nullcontext():
                exec(compile(source, str(path), "exec"), {"__name__": "__main__"})
        except BaseException as err:  # noqa: BLE001 - any failure of the example is its result
            if isinstance(err, KeyboardInterrupt):
                raise
            if verbose:
                traceback.print_exc()
            return f"{type(err).__name__}: {err}"
        finally:
            os.chdir(cwd)
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras", action="store_true", help="run the files unchanged on Keras 3")
    parser.add_argument("-k", default="", help="run only the files whose name contains this")
    parser.add_argument("-v", action="store_true", help="show each example's output and traceback")
    args = parser.parse_args(argv)
    results = Results(f"keras.io guide examples on {'Keras 3' if args.keras else 'dagjax'}")
    for path in sorted((HERE / "guides").glob("*.py")):
        if args.k in path.name:
            start = time.perf_counter()
            error = run_one(path, args.keras, args.v)
            results.add(f"{path.stem} ({time.perf_counter() - start:.1f} s)", error is None, error or "")
    results.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
