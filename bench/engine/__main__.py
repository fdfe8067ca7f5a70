"""python -m bench.engine [--quick] [--runs 3]: the engine benchmark, all engines in one run.

Each engine runs ``--runs`` times, each time in a fresh process, interleaved so a slow
minute of a shared machine hits every engine alike; the median counts. Only the dispatch
loop is timed. Then, for ours only: per-op latency, deep books and GC pauses.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import marshal
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._workload import check_standard, generate
from bench.engine.adapters import DISTRIBUTIONS, ENGINES

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "bench" / "requirements.txt"
DEEP_SIZES = (100_000, 1_000_000, 5_000_000)
CHILD_TIMEOUT = 1800


def ensure_peers() -> dict[str, str]:
    """Install missing peers from bench/requirements.txt; return engine -> why unavailable."""
    missing = {name for name, dist in DISTRIBUTIONS.items() if not importlib.util.find_spec(dist)}
    if missing:
        print(f"installing peers: pip install -r {REQUIREMENTS}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
            check=False,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            print(f"pip failed: {done.stderr.strip()[-500:]}", flush=True)
        importlib.invalidate_caches()
    return {
        name: f"{dist} is not installable here"
        for name, dist in DISTRIBUTIONS.items()
        if not importlib.util.find_spec(dist)
    }


def child(*args: str) -> dict[str, Any]:
    """Run bench.engine.child in a fresh interpreter and parse its JSON line."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.engine.child", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["exit " + str(done.returncode)]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, Python {platform.python_version()}"


def run_standard(runs: int, unavailable: dict[str, str]) -> dict[str, dict[str, Any]]:
    work = generate()
    problems = check_standard(work)
    if problems:
        sys.exit("workload checksums do not match WORKLOAD.md: " + "; ".join(problems))
    counts = work.counts
    print(
        f"workload: {counts['limit']:,} limit / {counts['cancel']:,} cancel / "
        f"{counts['market']:,} market; {counts['fills']:,} maker fills; "
        f"{counts['resting']} resting (bid {counts['bid_volume']:,} / ask "
        f"{counts['ask_volume']:,}) on {counts['bid_levels']} / {counts['ask_levels']} levels"
        " - checksums OK",
        flush=True,
    )
    with tempfile.NamedTemporaryFile(suffix=".ops", delete=False) as handle:
        marshal.dump([(op[0], op[1:]) for op in work.ops], handle)
        path = handle.name
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in ENGINES}
    try:
        for _ in range(runs):
            for name in ENGINES:
                if name not in unavailable:
                    samples[name].append(child("standard", name, path))
    finally:
        os.unlink(path)
    results: dict[str, dict[str, Any]] = {}
    for name in ENGINES:
        if name in unavailable:
            results[name] = {"error": unavailable[name]}
            print(f"{name:<20} not run: {unavailable[name]}", flush=True)
            continue
        ok = [s for s in samples[name] if "error" not in s]
        if not ok:
            results[name] = {"error": samples[name][0]["error"]}
            print(f"{name:<20} failed: {samples[name][0]['error']}", flush=True)
            continue
        rates = [s["ops_per_s"] for s in ok]
        last = ok[-1]
        book_ok = (last["bid_volume"], last["ask_volume"]) == (
            counts["bid_volume"],
            counts["ask_volume"],
        )
        fills_ok = last["fills"] is None or last["fills"] == counts["fills"]
        results[name] = {
            "median": statistics.median(rates),
            "runs": rates,
            "fills": last["fills"],
            "book_ok": book_ok,
            "fills_ok": fills_ok,
        }
        fills = "n/a" if last["fills"] is None else f"{last['fills']:,}"
        print(
            f"{name:<20} {statistics.median(rates) / 1e6:6.3f} M ops/s  (runs: "
            + ", ".join(f"{r / 1e6:.3f}" for r in rates)
            + f")  fills {fills}  book {'OK' if book_ok else 'MISMATCH'}",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the deep-book runs")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per engine")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    unavailable = ensure_peers()
    results = run_standard(args.runs, unavailable)

    ops_file = tempfile.NamedTemporaryFile(suffix=".ops", delete=False)  # noqa: SIM115
    marshal.dump([(op[0], op[1:]) for op in generate().ops], ops_file)
    ops_file.close()
    lat = child("latency", ops_file.name)
    os.unlink(ops_file.name)
    if "error" not in lat:
        print(
            f"latency (ours, per op incl. ~{lat['timer_ns']} ns timer): p50 "
            f"{lat['p50_ns'] / 1e3:.2f} us  p99 {lat['p99_ns'] / 1e3:.2f} us  p99.9 "
            f"{lat['p999_ns'] / 1e3:.2f} us  max {lat['max_ns'] / 1e3:.0f} us",
            flush=True,
        )

    gc_max = None
    if not args.quick:
        for size in DEEP_SIZES:
            for freeze in (False, True) if size == 1_000_000 else (True,):
                deep = child("deep", str(size), "freeze" if freeze else "default")
                if "error" in deep:
                    print(f"deep {size:,}: failed {deep['error']}", flush=True)
                    continue
                match = [deep["fills"], deep["resting_end"]] == deep["want"] and deep["volumes_ok"]
                print(
                    f"deep {size:>9,} resting ({'gc.freeze()' if freeze else 'default gc'}): "
                    f"{deep['us_per_op']:.2f} us/op; fills {deep['fills']:,} / resting "
                    f"{deep['resting_end']:,} ({'checksums OK' if match else 'MISMATCH'}); "
                    f"{deep['gc_collections']} GC runs, longest {deep['gc_max_ms']:.1f} ms; "
                    f"a full gc.collect() then {deep['full_gc_ms']:.1f} ms",
                    flush=True,
                )
                if size == 1_000_000 and freeze:
                    gc_max = max(deep["gc_max_ms"], deep["full_gc_ms"])

    ours = results["ours"].get("median")

    def ratio(name: str) -> str:
        other = results.get(name, {}).get("median")
        return f"{ours / other:.2f}x {name}" if ours and other else f"n/a {name}"

    parts = [
        f"ours {ours / 1e6:.3f} M ops/s" if ours else "ours failed",
        ratio("liquibook+listener"),
        ratio("liquibook"),
        ratio("lightmatchingengine"),
        ratio("pyorderbook"),
    ]
    if "error" not in lat:
        parts.append(f"p99 {lat['p99_ns'] / 1e3:.2f} us p99.9 {lat['p999_ns'] / 1e3:.2f} us")
    if gc_max is not None:
        parts.append(f"max GC pause @1M {gc_max:.1f} ms")
    print("ratios: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
