"""JAX's persistent compilation cache, on by default for the Keras-style façade.

``model.compile`` turns it on so a second run of the same script loads its
compiled programs from disk instead of compiling them again. The directory
is ``$XDG_CACHE_HOME/dagjax/xla`` (``~/.cache/dagjax/xla``); the environment
variable ``DAGJAX_COMPILATION_CACHE`` overrides it with another directory,
or turns the cache off with ``0``/``off``. A directory the user already gave
JAX (``jax_compilation_cache_dir``) is left alone.
"""

from __future__ import annotations

import os

import jax

ENV_VAR = "DAGJAX_COMPILATION_CACHE"
MIN_COMPILE_SECONDS = 0.2  # programs that compile faster than this are not worth a disk entry


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/dagjax/xla``, or ``~/.cache/dagjax/xla`` when that variable is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dagjax", "xla")


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Point JAX's persistent compilation cache at ``path`` (default: see the module docstring).

    Returns the directory in use, or None when the cache is off.
    """
    current = jax.config.jax_compilation_cache_dir
    if path is None:
        if current:
            return current
        setting = os.environ.get(ENV_VAR)
        if setting is not None and setting.strip().lower() in ("", "0", "off", "false", "no"):
            return None
        path = setting or default_cache_dir()
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path
