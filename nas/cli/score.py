"""`nas score`: score architectures from a CSV with training-free proxies (or ``train:E``)."""
from __future__ import annotations

import argparse

from nas.cli.vocabulary import Deprecated, add_archs, add_output, add_quiet, add_seed, add_space, command
from nas.errors import NasError
from nas.fileio import check_table_output, write_table


def cmd_score(args: argparse.Namespace) -> None:
    from nas.space import load_space
    from nas.space.csv import parse_arch_row, read_arch_csv

    if args.list:  # the old spelling of `nas proxies list`
        from nas.cli.proxies import cmd_proxies_list

        cmd_proxies_list(args)
        return
    for flag, value in (("--space", args.space), ("--archs", args.archs), ("-o", args.output)):
        if not value:
            raise NasError(f"{flag} is required", where="nas score",
                           fix="nas score --space S --archs IN.csv --proxy NAME[,NAME...] -o OUT.csv")
    if args.threads is not None and args.threads < 1:
        raise NasError(f"--threads must be at least 1, got {args.threads}", where="--threads")
    path = check_table_output(args.output, reads={"archs": args.archs})  # before hours of scoring, not after
    space = load_space(args.space)
    df = read_arch_csv(args.archs)

    import torch

    from nas.proxies import Scorer, default_proxy, parse_proxies

    if args.threads:
        torch.set_num_threads(args.threads)
    default = default_proxy(space)
    names = parse_proxies(args.proxies or default)
    wanted = names if default in names else [*names, default]
    archs = [parse_arch_row(space, text, args.archs, i) for i, text in enumerate(df["arch"])]
    scorer = Scorer(space, wanted, data=args.data, seed=args.seed, batch_size=args.batch_size)
    out = scorer.score_many(archs, progress=not args.quiet)
    import pandas as pd

    result = pd.DataFrame({"arch": df["arch"].to_numpy(), "canonical": out["arch"].to_numpy()})
    for name in names:  # keep the user's spelling in 'arch', the canonical form beside it
        result[name] = out[name].to_numpy()
    result["score"] = out[default].to_numpy()
    write_table(result, path)
    nan = int(result["score"].isna().sum())
    print(f"wrote {len(result)} rows to {path} (score = {default}; data {args.data}, seed {args.seed}"
          + (f"; {nan} NaN score(s), ranked last" if nan else "") + ")")


def register(subparsers) -> None:
    p = command(
        subparsers, "score", help="score architectures with training-free accuracy proxies",
        description="Score architectures (CSV column 'arch': canonical text, JSON or native encoding) with "
                    "training-free proxies; higher is better, NaN marks a degenerate network. Architectures with "
                    "fewer than 32 bits are scored fake-quantized. OUT has arch, canonical, one column per proxy "
                    "and score (the space's default proxy: qnaswot where blocks choose bit-widths, else naswot).",
        examples=("nas arch sample --space mobilenet-c10 --n 20 -o archs.csv",
                  "nas score --space mobilenet-c10 --archs archs.csv --proxy naswot,qnaswot -o scores.csv"))
    add_space(p, required=False)
    add_archs(p, default="required")
    p.add_argument("--proxy", dest="proxies", metavar="NAME[,NAME...]", help="comma-separated proxy names (`nas proxies list`), or train:EPOCHS (default: "
                                   "qnaswot where the space chooses bit-widths, else naswot)")
    p.add_argument("--data", default="digits",
                   help="images fed to data-dependent proxies: digits (default, bundled with scikit-learn: what "
                        "`nas search` scores with, so scores compare), fashion-mnist, noise, a folder with one "
                        "sub-folder of images per class, or an .npz with x and y")
    add_seed(p, "network initialisation and input batch seed")
    p.add_argument("--batch-size", type=int, default=None, help="override every proxy's batch size (default: "
                                                                  "each proxy's own, `nas proxies list`)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    add_output(p, "output CSV, or .parquet (needs pyarrow or fastparquet); checked before scoring, and never the "
                  "--archs file", default="required")
    add_quiet(p)
    p.add_argument("--list", action=Deprecated, nargs=0, new="`nas proxies list`", default=False)
    p.set_defaults(func=cmd_score)
