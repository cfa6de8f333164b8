"""Which variance the empirical Bayes step should trust: each CRO's own, or its cell's pooled one.

    .venv/bin/python -m bench.eb_variance [--cells 2000] [--seed 2026]

Simulates cells of CROs directly at the level of evaluations (no pipeline: seconds, so many cells), with
the process issue 21's reviewer used: respondent leniency N(0, 0.35) plus a lenient 20% shifted +0.6, a
halo per evaluation N(0, 0.3), attribute noise N(0, 0.6) averaged over 1-3 answered attributes (response
rates unequal), true composites near the top of the scale. Each cell has 36 CROs with 10 to about 150
evaluations (log-spaced popularity). "Clustered" cells send lenient raters to a third of the CROs (their
share of lenient raters 0.45 instead of 0.075), which biases those CROs' composites: no variance model
repairs that (the adjusted reading, `composite_adjusted`, is for it); the table shows both.

For each variance model the EB step of the engine (`cro_awards.method.uncertainty._shrinkage`) is run with it,
and the script prints: robust champions (p_award >= 0.8) truly above the true threshold, robust champions
per cell with no true difference, the observed rate of deserved awards per p_award bin, and true
champions found. A composite's own variance is its sample variance / n (what the resampling estimates);
pooled is `cro_awards.method.uncertainty.pooled_variance`.
"""

from __future__ import annotations

import argparse
import datetime as dt

import numpy as np

from cro_awards.method.uncertainty import _shrinkage, pooled_variance

N_CROS = 36
K = 1.0
ROBUST = 0.8
BINS = ((0.0, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, 0.9), (0.9, 1.0 + 1e-9))


def draw_cell(rng: np.random.Generator, scenario: str, clustered: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """(true composites, per CRO its evaluations' composite values)."""
    truth = np.full(N_CROS, 4.2) if scenario == "null" else rng.normal(4.2, 0.15, N_CROS)
    sizes = np.rint(np.geomspace(10, 150, N_CROS)[rng.permutation(N_CROS)]).astype(int)
    lenient_share = np.full(N_CROS, 0.2)
    if clustered:
        favoured = rng.permutation(N_CROS) < N_CROS // 3
        lenient_share = np.where(favoured, 0.45, 0.075)
    values = []
    for cro in range(N_CROS):
        n = sizes[cro]
        leniency = rng.normal(0.0, 0.35, n) + 0.6 * (rng.random(n) < lenient_share[cro])
        answered = rng.integers(1, 4, n)
        noise = rng.normal(0.0, 0.6, n) / np.sqrt(answered)
        values.append(np.clip(truth[cro] + leniency + rng.normal(0.0, 0.3, n) + noise, 1.0, 5.0))
    # The population's mean leniency (0.12) shifts every CRO alike: it changes no award.
    return truth, values


def simulate(cells: int, seed: int, scenario: str, clustered: bool) -> dict[str, dict[str, list]]:
    rng = np.random.default_rng([seed, ["null", "spread"].index(scenario), int(clustered)])
    found: dict[str, dict[str, list]] = {m: {"champion": [], "leader": []} for m in ("own", "pooled")}
    for _ in range(cells):
        truth, values = draw_cell(rng, scenario, clustered)
        n = np.array([len(v) for v in values], dtype=float)
        observed = np.array([v.mean() for v in values])
        own = np.array([v.var(ddof=1) for v in values]) / n
        true_mean = float(n @ truth / n.sum())
        true_sd = float(np.sqrt(n @ (truth - true_mean) ** 2 / n.sum()))
        truly_champion = (truth >= true_mean + K * true_sd - 1e-12) & (truth > true_mean + 1e-12)
        truly_best = truth >= truth.max() - 1e-12
        leader = int(np.argmax(observed))
        mean = float(n @ observed / n.sum())
        sd = float(np.sqrt(n @ (observed - mean) ** 2 / n.sum()))
        official_champion = (observed >= mean + K * sd) & (observed > mean)
        for model, variance in (("own", own), ("pooled", pooled_variance(own, n))):
            figures = _shrinkage(observed, n, variance, K, np.random.default_rng(0))
            for cro in np.flatnonzero(official_champion):
                found[model]["champion"].append((figures["p_champion_deserved"][cro], bool(truly_champion[cro])))
            found[model]["leader"].append((figures["p_leader_deserved"][leader], bool(truly_best[leader])))
    return found


def summarise(found: dict[str, dict[str, list]], cells: int, scenario: str) -> list[str]:
    lines = []
    for model, awards in found.items():
        champions = np.array(awards["champion"], dtype=float).reshape(-1, 2)
        leaders = np.array(awards["leader"], dtype=float).reshape(-1, 2)
        robust = champions[champions[:, 0] >= ROBUST]
        parts = [f"{model:>6}: robust champions {len(robust) / cells:.3f} a cell"]
        if scenario == "spread":
            parts.append(f"truly above {robust[:, 1].mean() if len(robust) else float('nan'):.3f}")
            parts.append(f"true champions found robust {int(robust[:, 1].sum())}")
        lines.append(", ".join(parts))
        for name, rows in (("champion", champions), ("leader", leaders)):
            cells_text = []
            for low, high in BINS:
                inside = rows[(rows[:, 0] >= low) & (rows[:, 0] < high)]
                if len(inside):
                    cells_text.append(
                        f"[{low:.1f},{min(high, 1):.1f}) n={len(inside)} p={inside[:, 0].mean():.2f} "
                        f"deserved={inside[:, 1].mean():.2f}"
                    )
            lines.append(f"        {name} p_award bins: " + "; ".join(cells_text))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    print(f"# EB variance model, {args.cells} cells per scenario, seed {args.seed}, {dt.date.today()}")
    for scenario in ("spread", "null"):
        for clustered in (False, True):
            raters = "clustered on a third of the CROs" if clustered else "spread evenly"
            print(f"\n## {scenario}, lenient raters {raters}")
            found = simulate(args.cells, args.seed, scenario, clustered)
            print("\n".join(summarise(found, args.cells, scenario)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
