"""Does a longer recipe make two trainings of one network agree? (issue 30: the recipe as a cause).

end_to_end's report measures its recipe's seed noise (``## Seed noise``): two trainings of one searched network
land 1.8 points apart (median), so a difference of 2-seed means resolves no better than about +-2 points and the
0.2-point "equal accuracy" of the target is out of reach. This script trains a few of the benchmark's networks,
front and baseline alike, with more seeds under two recipes, and reports each recipe's spread over seeds of the
float test accuracy (all 10,000 images) beside its CPU time:

- ``subset``: end_to_end's first recipe (3 epochs x a seeded 20,000-image subset);
- ``full``: the same recipe on all 58,000 training images (3 epochs; no seeded subset, three times the steps);
- ``full1``: one epoch of all 58,000 images — ``subset``'s cost (58,000 against 60,000 images), no repeated subset.

These are end_to_end's :data:`RECIPES`: a (recipe, model, seed) that end_to_end already trained is read from its
units (the same code, recipe and seed give the same weights), the others are trained here.

Resumable per (recipe, model, seed) and per epoch. Results: experiments/end_to_end/results/recipe_noise.{csv,md,json},
each unit's record under results/recipe_noise/units/ (committed); weights under
experiments/work/end_to_end/recipe_noise/ (git-ignored).

    python -m experiments.end_to_end.recipe_noise                       # default models, seeds 0-3 (hours)
    python -m experiments.end_to_end.recipe_noise --phase report
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from scipy import stats

from experiments.end_to_end import end_to_end as e2e
from experiments.harness import add_out_dir, write_results

RECIPES = {k: r for k, r in e2e.RECIPES.items() if r.float_from is None}  # float training recipes only
MODELS = ("front-s3-p020-t114", "mobilenetv2-0.35")  # the cheapest noisy front member and baseline (2 points apart)
SEEDS = (0, 1, 2, 3)
RESULTS = e2e.RESULTS / "recipe_noise"
WORK = e2e.WORK / "recipe_noise"


def model_named(name: str) -> e2e.Model:
    models = {m.name: m for m in e2e.all_models()}
    if name not in models:
        raise SystemExit(f"--models: no benchmark model {name!r}; known: {', '.join(models)}")
    return models[name]


def unit_path(recipe: str, model: str, seed: int) -> Path:
    return RESULTS / "units" / recipe / model / f"seed{seed}.json"


def from_end_to_end(model: e2e.Model, seed: int, recipe: e2e.Recipe) -> dict | None:
    """A (model, seed) end_to_end already trained with ``recipe``: its float accuracy and training record."""
    kept = e2e.kept_of(model, seed, recipe)
    results = sorted(kept.glob("*/result.json"))
    if not results or not (kept / "float.json").is_file():
        return None
    return unit_row(json.loads(results[0].read_text())["acc_fp32"], json.loads((kept / "float.json").read_text()),
                    "end_to_end units")


def unit_row(acc_fp32: float, record: dict, source: str) -> dict:
    """A unit's row: test accuracy beside float_trained's record (the same keys wherever the training ran)."""
    return {"acc_fp32": acc_fp32, "val_accuracy": record["val_accuracy"], "seconds": record["seconds"],
            "images": record["images"], "source": source}


def train_one(recipe: str, model: e2e.Model, seed: int) -> dict:
    import torch

    from nas.fileio import atomic_write_text
    from nas.space import load_space
    from nas.train.loop import evaluate

    path = unit_path(recipe, model.name, seed)
    if path.is_file():
        return json.loads(path.read_text())
    row = from_end_to_end(model, seed, RECIPES[recipe])
    if row is None:
        print(f"== {recipe} {model.name} seed {seed}", flush=True)
        space = load_space(model.space)
        arch = space.parse(model.arch)
        torch.manual_seed(seed)
        train_data, test_data = e2e.load_data(space, arch, seed)
        folder = WORK / recipe / model.name / f"seed{seed}"
        net, record = e2e.float_trained(model, seed, space, arch, train_data, recipe=RECIPES[recipe],
                                        folder=folder, kept=folder)
        row = unit_row(evaluate(net, test_data), record, "trained here")
    row = {"recipe": recipe, "name": model.name, "kind": model.kind, "seed": seed, **row}
    atomic_write_text(path, json.dumps(row, indent=1))
    return row


def run_train(models: list[e2e.Model], seeds: tuple[int, ...], recipes: tuple[str, ...]) -> None:
    """Seeds outer, so a run stopped part-way has every (recipe, model) at the same number of seeds."""
    for seed in seeds:
        for model in models:
            for recipe in recipes:
                train_one(recipe, model, seed)


def summarize(units: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (recipe, model): mean, SD (points) and range over seeds; per recipe: the SD pooled over models with its
    95 % chi-square interval, and the CPU minutes of one training."""
    g = units.groupby(["recipe", "name", "kind"])
    per = g.agg(seeds=("seed", "nunique"), acc=("acc_fp32", "mean"), sd=("acc_fp32", "std"),
                acc_min=("acc_fp32", "min"), acc_max=("acc_fp32", "max"),
                train_minutes=("seconds", "median")).reset_index()
    per[["acc", "acc_min", "acc_max", "sd"]] *= 100
    per["train_minutes"] /= 60
    order = {name: i for i, name in enumerate(RECIPES)}
    per = per.sort_values(["recipe", "name"], key=lambda c: c.map(order) if c.name == "recipe" else c,
                          ignore_index=True)
    rows = []
    for recipe, part in per[per["seeds"] >= 2].groupby("recipe", sort=False):
        dof = int((part["seeds"] - 1).sum())
        pooled = math.sqrt(float(((part["seeds"] - 1) * part["sd"] ** 2).sum()) / dof)
        lo, hi = (pooled * math.sqrt(dof / stats.chi2.ppf(q, dof)) for q in (0.975, 0.025))
        rows.append({"recipe": recipe, "models": len(part), "dof": dof, "pooled_sd_points": pooled,
                     "sd_ci95": f"[{lo:.2f}, {hi:.2f}]", "train_minutes_median": float(part["train_minutes"].median()),
                     "images_per_training": int(units.loc[units["recipe"] == recipe, "images"].median())})
    return per, pd.DataFrame(rows)


def run_report(out: Path) -> None:
    paths = sorted((RESULTS / "units").glob("*/*/seed*.json"))
    if not paths:
        raise SystemExit(f"no finished units under {RESULTS / 'units'}: run the train phase first")
    units = pd.DataFrame([json.loads(p.read_text()) for p in paths])
    per, pooled = summarize(units)
    recipes = {k: asdict(v) for k, v in RECIPES.items()}
    lines = ["# Recipe noise: how far trainings of one network land apart, per recipe", "",
             f"Float test accuracy ({e2e.DATA}, the whole test split) over training seeds. Recipes: {recipes}.",
             "", "## Pooled over models", "", pooled.to_markdown(index=False, floatfmt=".2f"), "",
             "## Per model", "", per.to_markdown(index=False, floatfmt=".2f"), ""]
    write_results(out, "recipe_noise", rows=units, md="\n".join(lines),
                  summary={"recipes": recipes, "pooled": pooled.to_dict(orient="records")}, resumed=True)
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase", choices=("all", "train", "report"), default="all")
    ap.add_argument("--models", nargs="+", default=list(MODELS), help="benchmark model names (default: %(default)s)")
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    ap.add_argument("--recipes", nargs="+", choices=tuple(RECIPES), default=list(RECIPES))
    add_out_dir(ap, "end_to_end")
    args = ap.parse_args()
    global RESULTS
    RESULTS = Path(args.out_dir) / "recipe_noise"  # the units; the results files beside end_to_end's
    if args.phase in ("all", "train"):
        import torch

        torch.set_num_threads(1)  # as end_to_end trains: one core a process, two processes side by side
        run_train([model_named(n) for n in args.models], tuple(args.seeds), tuple(args.recipes))
    if args.phase in ("all", "report"):
        run_report(Path(args.out_dir))


if __name__ == "__main__":
    main()
