"""Benchmark of `nas export` on Pareto members of a mobilenet-c10 study (issue 7).

Steps (all on this machine, 1 onnxruntime thread; bounded so it runs in ~30 min on a busy 2-vCPU box):

1. profile a latency table ``x86-export`` at the architectures' own bit-widths (``--dtype arch``) and fp32 for
   8 random mobilenet-c10 architectures (so every bit-width group has measured rows);
2. search: 60 NSGA-II trials, objectives proxy (params) + latency on that table, gaps filled by the flagged
   estimator (``allow_estimate``: the table holds only 8 architectures' layers);
3. profile the exact layers of the first K Pareto members (arch bits, int8 and fp32), so the predictions the
   export compares with are sums of measured rows;
4. export those K members twice (deployed at their own bit-widths, and all-int8), trained E epochs on a
   Fashion-MNIST subset; results in <out-dir>/export_benchmark.{csv,md,json} (out-dir:
   experiments/export/results; the profiled table in <out-dir>/latency_tables/, the study and the exported files
   in --work-dir).

    python -m experiments.export.export_benchmark [--k 3] [--epochs 3] [--n-train 1500] [--test 2000]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from experiments.harness import WORK, add_out_dir, write_results
from nas.deploy import ExportConfig, export, targets_from_study
from nas.latency.measure.profile import ProfileConfig, profile_space
from nas.search import SearchConfig, search
from nas.space import load_space

SPACE = "mobilenet-c10"
DEVICE = "x86-export"
PROFILE = ProfileConfig(threads=1, warmup=5, repeats=10, rounds=2, stat="p10")


def archs_csv(texts: list[str], path: Path) -> str:
    pd.DataFrame({"arch": texts}).to_csv(path, index=False)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=3, help="Pareto members exported (default 3)")
    ap.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    ap.add_argument("--n-train", type=int, default=1500, help="training images per epoch (default 1500)")
    ap.add_argument("--test", type=int, default=2000, help="test images (default 2000)")
    ap.add_argument("--trials", type=int, default=60, help="trials of the search (default 60)")
    ap.add_argument("--work-dir", type=Path, default=WORK / "export_benchmark",
                    help="folder of the study and the exported files (default experiments/work/export_benchmark)")
    add_out_dir(ap, "export")
    args = ap.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the library leaves Optuna's logging alone
    import torch

    torch.set_num_threads(1)  # exports for profiling and timing: one thread, as the tables are measured
    out = args.work_dir
    out.mkdir(parents=True, exist_ok=True)
    tables = args.out_dir / "latency_tables"
    tables.mkdir(parents=True, exist_ok=True)
    space = load_space(SPACE)
    t0 = time.perf_counter()

    seed_archs = [space.format(a) for a in space.sample_many(8, seed=7)]
    profile_space(SPACE, DEVICE, dtypes=["arch", "fp32"], archs=archs_csv(seed_archs, out / "seed.csv"),
                  config=PROFILE, out_dir=tables, description="nas export benchmark: this host, 1 thread")
    table = str(tables / f"{DEVICE}.csv")
    storage = f"journal:///{out}/study.journal"
    cfg = SearchConfig(space=SPACE, devices=[table], trials=args.trials, proxy="params", data="digits",
                       storage=storage, study="export-bench", allow_estimate=True, seed=0).resolved()
    search(cfg)
    targets = targets_from_study(storage, "export-bench", top_k=args.k)
    members = [t.arch for t in targets]
    profile_space(SPACE, DEVICE, dtypes=["arch", "int8", "fp32"], archs=archs_csv(members, out / "front.csv"),
                  config=PROFILE, out_dir=tables)
    t_prof = time.perf_counter() - t0

    rows, trained = [], {}  # one training per member, shared by both deployments
    for dtype in ("arch", "int8"):
        ecfg = ExportConfig(epochs=args.epochs, data="fashion-mnist", n_train=args.n_train, test_samples=args.test,
                            calib_samples=128, dtype=dtype, rounds=7, repeats=20)
        for r in export(targets, out / dtype, ecfg, trained=trained):
            r["deployment"] = dtype
            rows.append(r)
    df = pd.DataFrame(rows)
    cols = ["name", "deployment", "params", "macs", "fp32_acc", "quant_acc", "drop_points", "size_ratio", "fp32_ms",
            "quant_ms", "speedup", f"predicted_quant_ms.{table}", f"predicted_fp32_ms.{table}", "status"]
    md = df[[c for c in cols if c in df.columns]].rename(columns={f"predicted_quant_ms.{table}": "pred_quant_ms",
                                                                  f"predicted_fp32_ms.{table}": "pred_fp32_ms"})
    write_results(args.out_dir, "export_benchmark", rows=df, files=[table], md=(
        f"# nas export benchmark ({SPACE}, Fashion-MNIST, {args.epochs} epochs x {args.n_train} images, "
        f"test {args.test} images)\n\n" + md.to_markdown(index=False, floatfmt=".4g") + "\n"),
        summary={"archs": members, "profile_and_search_s": round(t_prof), "total_s": round(time.perf_counter() - t0)})
    print(md.to_string())


if __name__ == "__main__":
    main()
