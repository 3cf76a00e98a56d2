"""Benchmark dagjax ``fit`` against pure JAX, Keras 3 and Flax NNX: one command, one table.

Every framework variant x workload runs in its own subprocess (``cell.py``:
the measuring protocol is described there), one after another, so none
shares a compile cache, an allocator or a high-water mark with another.
Each cell starts with an empty persistent compilation cache (dagjax turns
JAX's on by default), so "first step" is a cold compile (but for the dagjax
``warm`` variant below).

    python benchmarks/run.py                                  # everything
    python benchmarks/run.py --only dagjax,jax --workload mlp
    python benchmarks/run.py --steps 50 --epochs 3 --json results.json
    python benchmarks/run.py --repeat 3       # on a shared machine: best of 3 rounds
    python benchmarks/run.py --baseline /tmp/old-dagjax  # adds a row for another checkout's dagjax

Goals checked per workload (ratios from the same run): dagjax's samples/s at
least the fastest pure-JAX variant's; its peak memory at most 1.2x, and its
time from building the model to the end of the first step (compile
included) at most 1.0x, that variant's (``cell.py`` says why build and first
step count together).

dagjax runs with its two opt-ins on (``DAGJAX_HOLD_GC=1`` and the
compilation cache), as four variants: ``fit`` (the persistent compilation
cache on, empty, so the first step compiles and writes it), ``nocache`` (the
cache off: compiling only, like the hand-written JAX), ``warm`` (a second
run of the same script: ``fit`` once to fill the cache, then the measured
run reads its programs from it) and ``reads`` (``fit`` with a callback that
reads ``model.params`` at each epoch end, as ModelCheckpoint does).

With ``--repeat N`` every cell runs N times, the cells of a workload taking
turns (round-robin), so a burst of load from other processes hits all
frameworks alike; a cell reports its best samples/s and first step (other
processes only ever add time) and its median memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workloads import WORKLOADS

HERE = Path(__file__).resolve().parent
ONLY_FOR = {"loop_im2col": ("cnn_full",), "scan_im2col": ("cnn_full",)}  # variants some workloads lack
VARIANTS = {
    "dagjax": ("fit", "nocache", "warm", "reads"),
    "jax": ("loop", "scan", "loop_im2col", "scan_im2col"),
    "keras": ("fit",),
    "flax": ("nnx",),
}
COLUMNS = [  # header, result key, format
    ("samples/s", "samples_per_s", "{:,.0f}"),
    ("step ms", "step_ms", "{:.2f}"),
    ("first step s", "first_step_s", "{:.2f}"),
    ("build s", "build_s", "{:.2f}"),
    ("build+first s", "to_first_step_s", "{:.2f}"),
    ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
    ("base RSS MiB", "base_rss_mib", "{:.0f}"),
    ("device MiB", "device_peak_mib", "{:.0f}"),
    ("loss", "loss", "{:.3f}"),
    ("weights", "n_weights", "{:,}"),
]
GOALS = [  # label, result key, dagjax / reference must be >= (True) or <= (False) the bound
    ("samples/s", "samples_per_s", True, 1.0),
    ("peak RSS", "peak_rss_mib", False, 1.2),
    ("device memory", "device_peak_mib", False, 1.2),
    ("build + first step", "to_first_step_s", False, 1.0),
]


def run_cell(framework: str, variant: str, workload: str, args: argparse.Namespace) -> dict:
    """One cell in a fresh interpreter; ``{"error": ...}`` when it fails or times out.

    The dagjax variants other than ``fit`` run ``fit`` differently (see the
    module docstring); ``baseline`` is dagjax ``fit`` imported from
    ``args.baseline`` (another checkout), to measure a change against the
    code before it.
    """
    steps = args.steps or WORKLOADS[workload].steps
    dagjax_setup = framework == "dagjax" and variant not in ("fit", "reads")
    cmd = [sys.executable, str(HERE / "cell.py"), framework, "fit" if dagjax_setup else variant, workload,
           "--steps", str(steps), "--epochs", str(args.epochs), "--seed", str(args.seed)]
    base = {"framework": framework, "variant": variant, "workload": workload}
    with tempfile.TemporaryDirectory(prefix="dagjax-bench-xla-") as cache:
        env = {**os.environ, "KERAS_BACKEND": "jax", "DAGJAX_HOLD_GC": "1",
               "DAGJAX_COMPILATION_CACHE": "off" if variant == "nocache" else cache,
               "DAGJAX_LOWERING_CACHE": os.path.join(cache, "lowering")}  # "warm" reads the first run's
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        if variant == "baseline":
            env["PYTHONPATH"] = str(args.baseline)
        try:
            if variant == "warm":  # the first run fills the cache the measured one reads
                subprocess.run(cmd, capture_output=True, timeout=args.cell_timeout, env=env, check=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.cell_timeout, env=env)
        except subprocess.TimeoutExpired:
            return {**base, "error": f"timed out after {args.cell_timeout} s"}
        except subprocess.CalledProcessError as err:
            return {**base, "error": f"the cache-filling run failed with exit status {err.returncode}"}
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return {**base, "error": lines[-1] if lines else f"exit status {proc.returncode}"}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "variant": variant}


def combine(runs: list[dict]) -> dict:
    """One cell's result from its repeated runs: best times, median memory (an error if none ran)."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    best = dict(max(ok, key=lambda r: r["samples_per_s"]))
    for key in ("first_step_s", "first_epoch_s", "build_s", "to_first_step_s"):
        best[key] = min(r[key] for r in ok)
    for key in ("peak_rss_mib", "base_rss_mib"):
        best[key] = statistics.median(r[key] for r in ok)
    best["runs"] = len(ok)
    for key in ("samples_per_s", "to_first_step_s"):  # every run's figure, for the JSON
        best[f"{key}_runs"] = [r[key] for r in ok]
    return best


def fmt(result: dict, key: str, spec: str) -> str:
    value = result.get(key)
    return "-" if value is None else spec.format(value)


def best_jax(results: list[dict]) -> dict | None:
    """The fastest pure-JAX variant that ran: the reference for the goals."""
    ran = [r for r in results if r["framework"] == "jax" and "error" not in r]
    return max(ran, key=lambda r: r["samples_per_s"], default=None)


def goal_lines(results: list[dict]) -> list[str]:
    ours = next((r for r in results if r["framework"] == "dagjax" and r["variant"] == "fit"
                 and "error" not in r), None)
    ref = best_jax(results)
    if ours is None or ref is None:
        return ["  goals: not checked (needs a dagjax row and a pure-JAX row)"]
    lines = []
    for label, key, at_least, bound in GOALS:
        if ours.get(key) is None or not ref.get(key):
            continue
        ratio = ours[key] / ref[key]
        ok = ratio >= bound if at_least else ratio <= bound
        sign = ">=" if at_least else "<="
        lines.append(f"  dagjax / jax-{ref['variant']} {label}: {ratio:.2f}x "
                     f"(goal {sign} {bound}x) {'ok' if ok else 'MISSED'}")
    for variant in ("nocache", "warm"):
        other = next((r for r in results if (r["framework"], r["variant"]) == ("dagjax", variant)
                      and "error" not in r), None)
        if other is not None:
            lines.append(f"  dagjax {variant} / jax-{ref['variant']} build + first step: "
                         f"{other['to_first_step_s'] / ref['to_first_step_s']:.2f}x")
    same_program = [r["samples_per_s"] for r in results if r["framework"] == "dagjax"
                    and r["variant"] in ("fit", "nocache", "warm") and "error" not in r]
    if len(same_program) > 1:
        lines.append(f"  noise: dagjax fit/nocache/warm train with the same program; their samples/s "
                     f"differ by {max(same_program) / min(same_program) - 1:.1%} in this run")
    for name, variant in (("keras", "fit"), ("dagjax", "baseline")):
        other = next((r for r in results if (r["framework"], r["variant"]) == (name, variant)
                      and "error" not in r), None)
        if other is not None:
            lines.append(f"  dagjax / {name} {variant} samples/s: "
                         f"{ours['samples_per_s'] / other['samples_per_s']:.2f}x")
    return lines


def table(workload: str, results: list[dict]) -> str:
    wl = WORKLOADS[workload]
    rows = [["framework"] + [c[0] for c in COLUMNS]]
    for r in results:
        name = f"{r['framework']} {r['variant']}"
        rows.append([name] + (["error"] + [""] * (len(COLUMNS) - 1) if "error" in r
                              else [fmt(r, key, spec) for _, key, spec in COLUMNS]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    steps = next((r["steps"] for r in results if "steps" in r), "?")
    lines = [f"\n## {workload}: {wl.description}, batch {wl.batch_size}, {steps} steps/epoch"]
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                        for j, (c, w) in enumerate(zip(row, widths))) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [f"  {r['framework']} {r['variant']}: {r['error']}" for r in results if "error" in r]
    return "\n".join(lines + goal_lines(results))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(VARIANTS),
                        help="comma-separated frameworks, or framework-variant (e.g. jax-loop)")
    parser.add_argument("--workload", default=",".join(WORKLOADS),
                        help=f"comma-separated, from {', '.join(WORKLOADS)}")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per epoch for every workload (default: per workload)")
    parser.add_argument("--epochs", type=int, default=3,
                        help="timed epochs after the first; samples/s from the fastest (default 3)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of every cell, round-robin; each cell reports its best (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--baseline", type=Path,
                        help="a checkout whose dagjax also runs, as the row 'dagjax baseline'")
    return parser.parse_args(argv)


def selected_cells(only: str) -> list[tuple[str, str]]:
    cells = []
    for item in only.split(","):
        framework, _, variant = item.strip().partition("-")
        if framework not in VARIANTS or (variant and variant not in VARIANTS[framework]):
            known = [f"{f}-{v}" for f, vs in VARIANTS.items() for v in vs]
            raise SystemExit(f"Unknown --only entry {item!r}; use one of {list(VARIANTS)} or {known}.")
        cells += [(framework, v) for v in ((variant,) if variant else VARIANTS[framework])]
    return cells


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cells = selected_cells(args.only) + ([("dagjax", "baseline")] if args.baseline else [])
    workloads = [w.strip() for w in args.workload.split(",")]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        raise SystemExit(f"Unknown workload(s) {unknown}; choose from {list(WORKLOADS)}.")
    start = time.perf_counter()
    print(f"# dagjax benchmarks: {' '.join(sys.argv)}\n# python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs; samples/s from the fastest of {args.epochs} "
          f"timed epochs after a first (compiling) epoch, best of {args.repeat} run(s)", flush=True)
    everything = []
    for workload in workloads:
        here = [(f, v) for f, v in cells if workload in ONLY_FOR.get(v, (workload,))]
        runs: dict[tuple[str, str], list[dict]] = {cell: [] for cell in here}
        for round_ in range(args.repeat):
            for framework, variant in here:
                t0 = time.perf_counter()
                runs[framework, variant].append(run_cell(framework, variant, workload, args))
                status = runs[framework, variant][-1].get("error", "ok")
                print(f"  [{workload} {framework}-{variant} run {round_ + 1}: "
                      f"{time.perf_counter() - t0:.0f} s, {status}]", file=sys.stderr, flush=True)
        results = [combine(runs[cell]) for cell in here]
        print(table(workload, results), flush=True)
        everything += results
    device = next((r["device"] for r in everything if "device" in r), "unknown")
    print(f"\n# device: {device}; whole run {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
