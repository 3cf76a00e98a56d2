"""Chapter 7 of Deep Learning with Python, run on dagjax with only its imports rewritten.

    PYTHONPATH=. .venv/bin/python benchmarks/keras_compat/run_book.py            # on dagjax
    PYTHONPATH=. .venv/bin/python benchmarks/keras_compat/run_book.py --keras    # the same files on Keras

Each file in ``book/`` is one runnable code example of the chapter (or a few that build on each
other) from the companion notebooks of the 3rd edition (``ed3_*``, ``chapter07_deep-dive-keras``)
and the 2nd edition (``ed2_*``, ``chapter07_working-with-keras``, its ``tensorflow.keras`` imports
written as ``import keras``), with synthetic data of MNIST's shapes in place of downloads and
fewer samples. The 1st edition's chapter 7 has no companion notebook: its examples (``ed1_*``) are
written here after the chapter's, with its Keras 2 imports, and each says what it changes to run
on Keras 3 itself. The examples written for other backends cannot run here and are listed as not
run, with why. Files run as the guides do
(``run_guides.run_one``: rewritten imports, a fresh namespace and temporary folder).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # so ``keras_compat`` imports as a package

from keras_compat.report import Results  # noqa: E402
from keras_compat.run_guides import run_one  # noqa: E402

# The chapter's examples that need another backend or library: (example, why it is not run).
NOT_RUN = [
    ("ed3 A TensorFlow training step function", "tf.GradientTape: the TensorFlow backend"),
    ("ed3 A PyTorch training step function", "loss.backward(), torch.no_grad(): the PyTorch backend"),
    ("ed3 Customizing fit() with TensorFlow", "tf.GradientTape in train_step: the TensorFlow backend"),
    ("ed3 Customizing fit() with PyTorch", "loss.backward() in train_step: the PyTorch backend"),
    ("ed3 train_step() metrics handling with TensorFlow", "tf.GradientTape: the TensorFlow backend"),
    ("ed3 train_step() metrics handling with PyTorch", "loss.backward(): the PyTorch backend"),
    ("ed3 TensorBoard in the notebook (%load_ext tensorboard)", "IPython magic, not Python"),
    ("ed2 A complete training and evaluation loop (train_step, loop)", "tf.GradientTape and tf.data"),
    ("ed2 A step-by-step evaluation loop", "tf.data.Dataset batching"),
    ("ed2 Make it fast with tf.function", "tf.function and tf.data"),
    ("ed2 Implementing a custom training step to use with fit()", "tf.GradientTape in train_step"),
    ("ed2 A custom train_step with compiled_loss / compiled_metrics", "tf.GradientTape in train_step"),
    ("ed2 TensorBoard in the notebook (%load_ext tensorboard)", "IPython magic, not Python"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras", action="store_true", help="run the files unchanged on Keras 3")
    parser.add_argument("-k", default="", help="run only the files whose name contains this")
    parser.add_argument("-v", action="store_true", help="show each example's output and traceback")
    args = parser.parse_args(argv)
    results = Results(f"Deep Learning with Python, chapter 7, on {'Keras 3' if args.keras else 'dagjax'}")
    for path in sorted((HERE / "book").glob("*.py")):
        if args.k in path.name:
            start = time.perf_counter()
            error = run_one(path, args.keras, args.v)
            results.add(f"{path.stem} ({time.perf_counter() - start:.1f} s)", error is None, error or "")
    results.print()
    print(f"\nnot run ({len(NOT_RUN)}, another backend or not Python):")
    for example, why in NOT_RUN:
        print(f"  {example}  -- {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
