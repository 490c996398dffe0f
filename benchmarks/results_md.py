"""The Markdown page benchmarks/run.py writes (benchmarks/RESULTS.md) from its
results; the hand-written sections after the KEPT line are kept."""

from __future__ import annotations

from pathlib import Path


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows], ""]


def _max_load(full: dict) -> float:
    return max(r["load"] for key in ("n0", "n2") for r in full[key])


def markdown(results: dict) -> str:
    full = results["full_run"]
    runs = lambda key: ", ".join(f"{r['seconds']:.1f}" for r in full[key])
    cpus = lambda key: ", ".join(f"{r['cpu']:.1f}" for r in full[key])
    loads = lambda key: ", ".join(f"{r['load']:.1f}" for r in full[key])
    lines = [
        f"# Benchmark results ({results['date']})", "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"Python {results['machine']['python']}, torch {results['machine']['torch']}. "
        f"Produced by `python benchmarks/run.py --repeats {results['repeats']}"
        f"{' --thorough' if results.get('thorough') else ''}`.", "",
        "## Full default run, torch CPU", "",
        "CPU: seconds of the process and its workers; load: 1-minute load average before the run. "
        "Wall times taken under a load above the core count are not comparable.", "",
        *_table(["workers", "runs (s)", "median (s)", "CPU (s)", "load"],
                [["-n 0", runs("n0"), f"{full['median_n0']:.1f}", cpus("n0"), loads("n0")],
                 ["-n 2", runs("n2"), f"{full['median_n2']:.1f}", cpus("n2"), loads("n2")]]),
        f"Speed-up with -n 2: **{full['ratio']:.2f}x**. Targets: -n 2 at most 30 s (median of 5) with 3-4x "
        "today's families; -n 2 at least 1.6x faster than -n 0.", "",
        *([f"**Caution: the load average reached {_max_load(full):.0f} on {results['machine']['cores']} cores; "
           "these wall times, the speed-up and the phase spans below are not comparable with a quiet "
           "machine's. CPU seconds are less affected.**", ""]
          if _max_load(full) > (results["machine"]["cores"] or 1) else []),
        "## Where one run's time goes", "",
        "Seconds from the launch of `python -m pytest`, first run of each worker count "
        "(benchmarks/phases.py). \"at\" rows are points in time, the others spans.", "",
    ]
    for key in ("n0", "n2"):
        lines += [f"### -n {key[1]}", "", *_table(["phase", "seconds"], full["phases_" + key])]
    lines += ["## Time per example by check kind (-n 0, torch CPU)", "",
              "Drawing, backend and check columns appear when the runner records its split in the item's record "
              "(`record[\"timing\"] = {\"draw\": s, \"backend\": s, \"check\": s}`).", "",
              *_table(["check", "items", "examples", "s in examples", "ms/example", "draw ms", "backend ms", "check ms"],
                      [[r["check"], r["items"], r["examples"], r["seconds"], r["ms_per_example"],
                        r.get("draw_ms"), r.get("backend_ms"), r.get("check_ms")] for r in results["per_check"]]),
              "## Imports (fresh interpreter each, median of 3)", "",
              *_table(["import", "CPU (s)", "wall (s)"], [[r["import"], r["cpu"], r["wall"]] for r in results["imports"]])]
    if results.get("thorough"):
        t = results["thorough"]
        lines += ["## Thorough profile (200 examples per item), -n 2, one run", "",
                  f"{t['seconds']:.1f} s wall, {t['cpu']:.1f} s CPU (load {t['load']:.1f}), "
                  f"{t['examples']} examples, {t['in_examples']:.1f} s in examples.", ""]
    lines += [
        "## 10 slowest items (-n 0, torch CPU)", "",
        *_table(["item", "seconds"], [[f"`{row['id']}`", f"{row['seconds']:.2f}"] for row in results["slowest"]]),
        "## Statistical clauses: samples drawn versus the theoretical minimum", "",
        "Minimum: fixed-sample n for the decision's alpha, power 0.999 and the clause's delta, by the "
        "normal approximation; blank where no single-proportion formula applies.", "",
        *_table(["clause", "decisions", "median n drawn", "median minimum n", "median ratio", "max ratio", "s", "samples/s"],
                [[f"`{r['clause']}`", r["decisions"], f"{r['median_drawn']:,}",
                  None if r["median_minimum"] is None else f"{r['median_minimum']:,}", r["median_ratio"], r["max_ratio"],
                  r["seconds"], None if r["samples_per_second"] is None else f"{r['samples_per_second']:,}"]
                 for r in results["statistical"]]),
        "## Throughput (-n 0)", "",
        *_table(["backend", "examples", "seconds in examples", "examples/s"],
                [[name, t["examples"], t["seconds"], t["examples_per_second"]] for name, t in results["throughput"].items()]),
        "## torch-cuda", "",
        (f"{results['cuda']['card']}: full run {results['cuda']['seconds']:.1f} s" if results.get("cuda")
         else "No CUDA GPU on this machine: not measured here."), "",
    ]
    return "\n".join(lines)


KEPT = "<!-- Hand-written sections from here on: benchmarks/run.py keeps them when it rewrites this file. -->"


def kept_sections(path: Path) -> str:
    """The hand-written part of an existing results file: from the KEPT line on."""
    text = path.read_text() if path.exists() else ""
    start = text.find(KEPT)
    return "\n" + text[start:] if start >= 0 else ""


README_START, README_END = "<!-- run-costs:start -->", "<!-- run-costs:end -->"


def readme_table(results: dict, source: str) -> str:
    """The README's "What a run costs" table, from one benchmarks/run.py results file."""
    full, machine = results["full_run"], results["machine"]
    runs = {key: ", ".join(f"{r['seconds']:.1f}" for r in full[key]) for key in ("n0", "n2")}
    rows = [
        ["full default run, `-n 2`", f"**{full['median_n2']:.1f} s**", f"median of {len(full['n2'])}: {runs['n2']}"],
        ["full default run, `-n 0`", f"{full['median_n0']:.1f} s", f"median of {len(full['n0'])}: {runs['n0']}"],
        ["speed-up of `-n 2`", f"{full['ratio']:.2f}x", "target: at least 1.6x"],
    ]
    if results.get("thorough"):
        t = results["thorough"]
        rows.append(["thorough profile (200 examples per item), `-n 2`", f"{t['seconds']:.0f} s",
                     f"one run, {t['examples']:,} examples"])
    torch_rate = results["throughput"]["torch"]
    rows.append(["examples per second, `-n 0`", f"{torch_rate['examples_per_second']:.0f}",
                 f"{torch_rate['examples']:,} examples in the default run"])
    lines = [README_START,
             f"Measured {results['date'][:10]} on {machine['cores']} cores ({machine['cpu']}), Python "
             f"{machine['python']}, torch {machine['torch']}, by `python benchmarks/run.py --repeats "
             f"{results['repeats']}{' --thorough' if results.get('thorough') else ''}` "
             f"([`{source}`]({source})):", "",
             *_table(["run", "time", "detail"], rows), README_END]
    return "\n".join(line for line in lines)


def update_readme(readme: Path, results: dict, source: str) -> bool:
    """Rewrite the table between the README's run-costs markers; False if it has none."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    readme.write_text(text[:start] + readme_table(results, source) + text[end + len(README_END):])
    return True
