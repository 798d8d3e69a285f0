"""`nas export`: a thin wrapper over nas.deploy.export."""
from __future__ import annotations

import argparse

from nas.cli.vocabulary import add_arch, add_out_dir, add_quiet, add_seed, add_space, command, require_out_dir
from nas.errors import NasError
from nas.search.storage import DEFAULT_STORAGE

def cmd_export(args: argparse.Namespace) -> None:
    from nas.deploy import ExportConfig, export, target_from_arch, targets_from_study

    require_out_dir(args, "nas export")
    if args.arch or args.space:
        if args.storage or args.study or args.top_k or args.trial is not None:
            raise NasError("give either --space/--arch or --storage/--study, not both", where="nas export")
        if not args.arch:
            raise NasError("--space needs --arch", where="nas export",
                           fix="e.g. nas export --space mobilenet-c10 --arch '...' --out-dir out, or nas export "
                               "--arch mobilenetv2-0.5 --out-dir out (a baseline name implies its space: `nas arch list`)")
        targets = [target_from_arch(args.space, args.arch, args.devices)]
    else:
        if not args.study:
            raise NasError(f"give --study NAME (and --storage URL, default {DEFAULT_STORAGE}), or --space S "
                           "--arch ARCH", where="nas export")
        if args.top_k is not None and args.trial is not None:
            raise NasError("give --top-k or --trial, not both", where="nas export")
        top_k = None if args.trial is not None else (args.top_k or 3)
        targets = targets_from_study(args.storage or DEFAULT_STORAGE, args.study, top_k=top_k, trial=args.trial)
        if args.devices:
            for t in targets:
                t.devices = list(args.devices)
    cfg = ExportConfig(epochs=args.epochs, dtype=args.dtype, data=args.data, calib_samples=args.calib_samples,
                       n_train=args.n_train or None, bn_samples=args.bn_samples, test_samples=args.test_samples, seed=args.seed,
                       threads=args.threads, rounds=args.rounds, progress=not args.quiet, qat_epochs=args.qat_epochs,
                       qat_lr=args.qat_lr, qat_n_train=args.qat_n_train, train_device=args.train_device)
    rows = export(targets, args.out_dir, cfg)
    for r in rows:
        print(result_line(r))
    print(f"wrote {args.out_dir}/summary.csv")
    failed = [r["name"] for r in rows if r["status"] != "ok"]
    if failed:
        raise NasError(f"{len(failed)} of {len(rows)} model(s) failed: {', '.join(failed)} (the others were exported)",
                       where=f"{args.out_dir}/summary.csv", fix="see the error column")


def result_line(r: dict) -> str:
    """One summary row as printed: accuracy, size and timing (a file that could not be timed says so)."""
    if r["status"] != "ok":
        return f"{r['name']}: FAILED: {r['error']}"
    ms = [f"{v:.3f}" if v is not None else "(not timed)" for v in (r["fp32_ms"], r["quant_ms"])]
    timing = f"{ms[0]} -> {ms[1]} ms" + (f" (x{r['speedup']:.2f})" if r["speedup"] is not None else "")
    if r.get("latency_error"):
        timing += f"; timing failed: {r['latency_error']}"
    return (f"{r['name']}: acc fp32 {r['fp32_acc']:.4f} -> quantized {r['quant_acc']:.4f}, size x{r['size_ratio']:.2f}, "
            + timing)


def register(sub) -> None:
    p = command(sub, "export", help="train, quantize and export architectures (ONNX), verified in onnxruntime",
                description="Build, train E epochs, export fp32 ONNX, quantize at the architecture's bit-widths "
                            "(onnxruntime static QDQ), evaluate and time both; writes DIR/<name>/{model.onnx,"
                            "model.quant.onnx,card.json} and DIR/summary.csv.",
                examples=("nas export --arch mobilenetv2-0.5 --dtype int8 --epochs 1 --n-train 500 "
                          "--test-samples 200 --out-dir exported",
                          "nas export --study mobilenet-c10-x86-2vcpu --top-k 3 --epochs 10 --out-dir exported"))
    p.add_argument("--storage", help=f"Optuna storage URL of a `nas search` study (default {DEFAULT_STORAGE})")
    p.add_argument("--study", help="study name (default: none; give it or --arch)")
    p.add_argument("--top-k", type=int, help="export the first K Pareto members (default 3)")
    p.add_argument("--trial", type=int, help="export this trial number (default: the top K instead)")
    add_space(p, required=False, what="search space of --arch (default: the one a baseline name implies)")
    add_arch(p, what="one architecture to export instead of a study's members")
    p.add_argument("--device", dest="devices", action="append", metavar="NAME|PATH",
                   help="latency table(s) to compare with; repeatable (default: the study's devices)")
    add_out_dir(p, "where the models go, one folder each, and summary.csv", old_o=True)
    p.add_argument("--epochs", type=int, default=0, help="training epochs (default 0: export untrained)")
    p.add_argument("--qat-epochs", type=int, default=0,
                   help="after training, fine-tune this many epochs with fake quantization at the bits it deploys "
                        "at (quantization-aware; default 0: off)")
    p.add_argument("--qat-lr", type=float, default=0.01, help="peak learning rate of the QAT fine-tuning "
                                                              "(default 0.01)")
    p.add_argument("--qat-n-train", type=int, default=None,
                   help="training images per QAT epoch (default: as --n-train; 0: the whole split)")
    p.add_argument("--train-device", default="auto",
                   help="where to train: auto (CUDA when torch sees a GPU; default), cpu or cuda")
    p.add_argument("--data", default="fashion-mnist",
                   help="training and test data: fashion-mnist (default: real images to train on, unlike the "
                        "bundled 8x8 digits the proxies score with), digits, a folder with one sub-folder of images "
                        "per class (optional train/ and test/), or an .npz with x, y (x_test, y_test)")
    p.add_argument("--dtype", default="arch",
                   help="deployment: arch (each layer at the bit-widths it chose; default), int8 (all w8a8) or fp32")
    p.add_argument("--calib-samples", type=int, default=128, help="training images for calibration (default 128)")
    p.add_argument("--n-train", type=int, default=5000, help="training images per epoch (default 5000; 0: the "
                                                             "whole split)")
    p.add_argument("--bn-samples", type=int, default=512,
                   help="after training, recompute BatchNorm statistics on this many training images (default 512; "
                        "0: off)")
    p.add_argument("--test-samples", type=int, help="test images for accuracy (default: the whole test split)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads for timing (default 1; a table's own "
                                                          "setting wins)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    add_seed(p, "training, calibration and test-sample seed")
    add_quiet(p)
    p.set_defaults(func=cmd_export)
