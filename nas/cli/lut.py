"""`nas lut {list,show,predict,profile,validate,fit,adapt,suggest}`: latency tables from the command line (thin: parse, call, print)."""
from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.common import print_table
from nas.cli.vocabulary import Deprecated, add_arch, add_archs, add_output, add_seed, add_space, command
from nas.errors import NasError
from nas.fileio import check_output_file, check_table_output, write_table

def _model(args: argparse.Namespace, *, calibrated: bool = True):
    from nas.latency.load import load as load_latency

    source = args.device
    if not source:
        raise NasError("give --device NAME or --table PATH.csv", where=f"nas lut {args.sub}",
                       fix="`nas lut list` shows the devices")
    return load_latency(source, dtype=args.dtype, calibrated=calibrated)


def cmd_list(args: argparse.Namespace) -> None:
    from nas.latency.measure.host import host_match
    from nas.latency.table import list_devices, list_transferred, read_table
    from nas.latency.transfer.model import TransferredLatencyModel

    rows = []
    for name, path in list_devices().items():
        try:
            t = read_table(path)
            cal = ",".join(sorted((t.meta.get("calibration") or {}).keys())) or "-"
        except NasError as exc:
            rows.append((name, "table", "-", "-", "-", "-", "-", f"INVALID: {exc}"))
            continue
        rows.append((name, "table", ",".join(t.meta["spaces"]), str(len(t.entries)), str(t.meta["dtype"]), cal,
                     host_match(t.meta)[0], str(t.meta["description"])[:60]))
    for name, path in list_transferred().items():
        try:
            m = TransferredLatencyModel.read(path)
        except NasError as exc:
            rows.append((name, "transferred", "-", "-", "-", "-", "-", f"INVALID: {exc}"))
            continue
        rows.append((name, "transferred", m.space_name, f"k={m.doc.get('k', '?')}", m.dtype, "-",
                     host_match(m.doc)[0], str(m.doc.get("description", ""))[:60]))
    print_table(("device", "kind", "spaces", "rows", "dtype", "calibrated", "this host", "description"), rows)
    print("this host: yes = measured on a host like this one (CPU model, ISA features, onnxruntime version), no = "
          "on another, unknown = no fingerprint recorded, n/a = another device (published tables, boards)")


def cmd_show(args: argparse.Namespace) -> None:
    import yaml

    from nas.latency.table import read_table
    from nas.latency.transfer.model import TransferredLatencyModel, is_transferred_ref

    args.name = args.device or args.name
    if not args.name:
        raise NasError("which table?", where="--device", fix="e.g. nas lut show --device raspi4")
    transferred = is_transferred_ref(args.name)
    if transferred is not None:
        m = TransferredLatencyModel.read(transferred)
        print(f"{m.device}  ({m.path})  content hash {m.content_hash()}")
        print(_host_line(m.doc))
        doc = {k: v for k, v in m.doc.items() if k != "measurements"}
        print(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).rstrip())
        print(f"measurements: {len(m.doc.get('measurements') or [])} (in {m.path})")
        return
    t = read_table(args.name)
    print(f"{t.device}  ({t.csv_path})  content hash {t.content_hash()}")
    print(_host_line(t.meta))
    print(yaml.safe_dump(t.meta, sort_keys=False, allow_unicode=True).rstrip())
    if args.space:
        from nas.latency.predict import TableLatencyModel
        from nas.space import load_space

        model = TableLatencyModel(t, dtype=args.dtype)
        space = load_space(args.space)
        missing = model.missing_for(space)
        print(f"coverage of {space.name} ({model.dtype}): "
              + ("complete" if not missing else f"{len(missing)} signature(s) missing"))
    print(t.to_csv_text().splitlines()[0])
    for line in t.to_csv_text().splitlines()[1:args.rows + 1]:
        print(line)
    if len(t.entries) > args.rows:
        print(f"... {len(t.entries) - args.rows} more rows")


def _host_line(meta: dict) -> str:
    """``host: <fingerprint or the named host>; this host: yes/no/unknown/n/a (differences)``."""
    from nas.latency.measure.host import describe, host_match

    status, diff = host_match(meta)
    if meta.get("host_fingerprint"):
        host = describe(meta["host_fingerprint"])
    else:
        host = str(meta.get("host") or (meta.get("provenance") or {}).get("host") or "not recorded")
    return f"host: {host}\nthis host: {status}" + (f" ({'; '.join(diff)})" if diff else "")


def cmd_predict(args: argparse.Namespace) -> None:
    from nas.space.csv import parse_arch_row, read_arch_csv
    from nas.space import load_space

    model = _model(args, calibrated=not args.no_calibration)
    space = load_space(args.space)
    args.arch = args.arch or args.arch_text
    if args.arch:
        pred = model.predict(space.parse(args.arch), space, allow_estimate=args.allow_estimate)
        print_table(("layer", "signature", "ms", "estimated"),
                     [(r.name, r.key, f"{r.ms:.4f}", "yes" if r.estimated else "") for r in pred.rows])
        extra = f", energy {pred.energy_mJ:.4f} mJ" if pred.energy_mJ is not None else ""
        flags = (" (calibrated; table sum %.4f ms)" % pred.raw_ms if pred.calibrated else "") + \
                (" (contains ESTIMATED rows)" if pred.estimated else "")
        print(f"total: {pred.latency_ms:.4f} ms{extra} on {model.device}{flags}")
        return
    if not args.archs or not args.output:
        raise NasError("give an architecture, or --archs IN.csv with -o OUT.csv", where="nas lut predict",
                       fix="e.g. nas lut predict --device raspi4 --space fbnet-c100 --archs in.csv -o out.csv")
    import pandas as pd
    from tqdm import tqdm

    path = check_table_output(args.output, reads={"archs": args.archs})
    df = read_arch_csv(args.archs)
    out = []
    for i, text in enumerate(tqdm(df["arch"], desc="predict", unit="arch", disable=len(df) < 2000)):
        pred = model.predict(parse_arch_row(space, text, args.archs, i), space, allow_estimate=args.allow_estimate)
        row = {"arch": text, "latency_ms": pred.latency_ms}
        if pred.energy_mJ is not None:
            row["energy_mJ"] = pred.energy_mJ
        if args.allow_estimate:
            row["estimated"] = pred.estimated
        if pred.calibrated:
            row["table_sum_ms"] = pred.raw_ms
        out.append(row)
    write_table(pd.DataFrame(out), path)
    n_est = sum(bool(r.get("estimated")) for r in out)
    print(f"wrote {len(out)} predictions ({model.device}, {model.dtype}) to {path}"
          + (f"; {n_est} contain estimated layers" if n_est else ""))


def cmd_profile(args: argparse.Namespace) -> None:
    import sys

    import torch

    from nas.latency.measure.profile import ProfileConfig, profile_space

    if bool(args.archs) == bool(args.all):
        raise NasError("give exactly one of --archs IN.csv or --all", where="nas lut profile",
                       fix="--archs profiles only what those architectures need; --all the whole space")
    cfg = ProfileConfig(threads=args.threads, warmup=args.warmup, repeats=args.repeats, rounds=args.rounds,
                        stat=args.stat)
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    torch.set_num_threads(1)  # layers are exported one by one; idle torch threads would compete with onnxruntime
    r = profile_space(args.space, args.device_name, dtypes=dtypes, archs=args.archs, config=cfg,
                      out_dir=args.out_dir, description=args.description, boundaries=args.boundaries)
    print(f"{r.measured} signature(s) measured in {r.seconds:.1f} s, {r.already_present} already in the table; "
          f"{r.rows} rows in {r.path}")
    if r.dropped:
        print(f"nas: warning: {len(r.dropped)} signature(s) not written: measured twice, no slower than the "
              "per-call overhead subtracted (value <= 0 ms); missing like unmeasured ones (a re-run measures them "
              "again; --allow-estimate estimates them): " + ", ".join(s.key for s in r.dropped), file=sys.stderr)
    print(f"table: {r.path}")


def cmd_validate(args: argparse.Namespace) -> None:
    import torch

    from nas.latency.measure.validate import validate

    source = args.device
    if not source:
        raise NasError("give --device NAME or --table PATH.csv", where="nas lut validate")
    torch.set_num_threads(1)  # as when profiling: export with one thread, time with onnxruntime's
    report = validate(source, args.space, n=args.n, dtype=args.dtype, threads=args.threads, seed=args.seed,
                      calibrate=args.calibrate, output=args.output, archs=args.archs, rounds=args.rounds)
    print(report.summary())


def cmd_adapt(args: argparse.Namespace) -> None:
    from nas.latency.transfer.adapt import adapt, quality_summary

    from nas.latency.table import new_table_path

    if (args.measured is None) == (args.n is None):
        raise NasError("give exactly one of --measured CSV or --measure-here N", where="nas lut adapt",
                       fix="--measured: whole-network times taken elsewhere; --measure-here 20: measure 20 "
                           "networks on this host")
    path = Path(args.output) if args.output else new_table_path(args.device_name, suffix=".transfer.yaml")
    if args.n is not None:
        model = _adapt_here(args, path)
    else:
        check_output_file(path, reads={"measured": args.measured})
        model = adapt(args.space, args.measured, args.device_name, sources=args.sources or None, dtype=args.dtype,
                      threads=args.threads, host=args.host)
    path = model.write(path)
    print(quality_summary(model))
    print(f"wrote transferred model {model.device} to {path} (use it as --device {path}"
          + (")" if args.output else f" or --device {model.device})"))


def _adapt_here(args: argparse.Namespace, path: Path):
    import torch

    from nas.latency.measure.host import describe
    from nas.latency.transfer.here import adapt_here

    if args.host:
        raise NasError("--host names the host --measured measurements were taken on; --measure-here measures "
                       "this one (and records its fingerprint)", where="--host", fix="leave --host out")
    check_output_file(path)
    torch.set_num_threads(1)  # as when profiling: export with one thread, time with onnxruntime's
    r = adapt_here(args.space, args.n, args.device_name, path, sources=args.sources or None,
                   seed=args.seed, dtype=args.dtype, threads=args.threads, rounds=args.rounds)
    for note in r.notes:
        print(f"note: {note}")
    fp = r.model.doc.get("host_fingerprint")
    print(f"{'reused' if r.reused else 'measured'} {r.model.doc['k']} networks on this host"
          + ("" if r.reused else f" in {r.seconds:.0f} s") + f" ({describe(fp)}); measurements: {r.measured_csv}")
    return r.model


def _refuse_overwrite(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise NasError("exists already", where=str(path), fix="add --overwrite to replace it, or choose another "
                                                              "--device-name")


def cmd_fit(args: argparse.Namespace) -> None:
    from nas.latency.fitted import fit_table
    from nas.latency.table import new_table_path

    path = new_table_path(args.device_name, out_dir=args.out_dir)
    _refuse_overwrite(path, args.overwrite)
    fitted = fit_table(args.space, args.measured, args.device_name, dtype=args.dtype, holdout=args.holdout,
                       seed=args.seed, description=args.description)
    path = fitted.table.write(path)
    q = fitted.quality
    print(f"fitted {args.device_name} ({args.space}) from {q['n']} whole-network measurements: "
          f"{len(fitted.table.entries)} rows, lambda {q['lambda']:.4g} (5-fold CV)")
    for name in ("heldout", "in_sample"):
        if name in q:
            m = q[name]
            label = f"held out ({m['n']}, fitted on {m['fitted_on']})" if name == "heldout" else "in-sample"
            print(f"  {label:<32} MAPE {m['mape_pct']:6.2f} %  within ±10 %: {m['within10_pct']:5.1f} %  "
                  f"Spearman {m['spearman']:.4f}")
    for w in q["warnings"]:
        print(f"  WARNING: {w}")
    print(f"table: {path}")


def cmd_suggest(args: argparse.Namespace) -> None:
    import pandas as pd

    from nas.latency.transfer.suggest import suggest
    from nas.space import load_space

    space = load_space(args.space)
    archs = suggest(space, args.n, seed=args.seed, sources=args.sources or None, dtype=args.dtype, pool=args.pool)
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    texts = [space.to_native(a) or space.format(a) for a in archs] if args.native else [space.format(a) for a in archs]
    pd.DataFrame({"arch": texts, "latency_ms": [""] * len(archs)}).to_csv(path, index=False)
    print(f"wrote {len(archs)} architectures to measure to {path}: fill in latency_ms (whole network, ms), then "
          f"`nas lut adapt --space {space.name} --measured {path} --device-name NAME -o NAME.transfer.yaml`")


def register(subparsers) -> None:
    lut = subparsers.add_parser("lut", help="latency tables: list, show, predict, profile, validate, fit, adapt, "
                                                 "suggest")
    sub = lut.add_subparsers(dest="sub", required=True)
    _register_tables(sub)
    _register_measure(sub)
    _register_transfer(sub)


def _source(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--device", metavar="NAME|PATH",
                   help="the latency table or model: a name (`nas lut list`), a table's CSV or .meta.yaml, or a "
                        ".transfer.yaml (required)")
    g.add_argument("--table", dest="device", action=Deprecated, new="--device")
    add_space(p)
    p.add_argument("--dtype", default=None,
                   help="deployment precision: arch (each layer at its own bits; default), fp32 or int8")


def _register_tables(sub) -> None:
    """list, show, predict: reading tables."""
    command(sub, "list", help="devices with a shipped, profiled or adapted table, and whether each is this host's",
            examples=("nas lut list",)).set_defaults(func=cmd_list)

    show = command(sub, "show", help="metadata, host and first rows of one table",
                   examples=("nas lut show --device x86-2vcpu --space mobilenet-c10",))
    show.add_argument("--device", metavar="NAME|PATH", help="the table, as everywhere (default: none)")
    show.add_argument("name", nargs="?", metavar="NAME|PATH", help="the table, as with --device (default: none)")
    show.add_argument("--rows", type=int, default=10, help="rows to print (default 10)")
    add_space(show, required=False, what="also report coverage of this space")
    show.add_argument("--dtype", default=None, help="arch (default), fp32 or int8")
    show.set_defaults(func=cmd_show)

    pred = command(sub, "predict", help="latency of architectures from a table (sum of layers)",
                   examples=("nas lut predict --device x86-2vcpu --space mobilenet-c10 --arch mobilenetv2-1.0",
                             "nas lut predict --device raspi4 --space fbnet-c100 --archs archs.csv -o latency.csv"))
    _source(pred)
    add_arch(pred, what="one architecture: prints its per-layer breakdown")
    pred.add_argument("arch_text", nargs="?", metavar="ARCH", help="the architecture, as with --arch (default: none)")
    add_archs(pred)
    add_output(pred, "CSV for --archs: arch, latency_ms[, energy_mJ]")
    pred.add_argument("--allow-estimate", action="store_true",
                      help="fill missing signatures from the documented estimator (rows flagged)")
    pred.add_argument("--no-calibration", action="store_true", help="ignore a stored calibration")
    pred.set_defaults(func=cmd_predict)
def _register_measure(sub) -> None:
    """profile, validate: measuring on this machine."""
    prof = command(sub, "profile", help="measure layer signatures on this machine with onnxruntime",
                   examples=("nas lut profile --space mobilenet-c10 --archs archs.csv --dtype arch,fp32 "
                             "--device-name my-laptop",))
    add_space(prof)
    prof.add_argument("--device-name", required=True, help="name of the table to write or extend")
    prof.add_argument("--dtype", dest="dtypes", default="fp32", metavar="DTYPE[,DTYPE...]", help="comma-separated: fp32, int8, arch (default fp32)")
    prof.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    prof.add_argument("--archs", help="CSV with a column 'arch': profile only what these need (default: none; "
                                      "or --all)")
    prof.add_argument("--all", action="store_true", help="profile every signature of the space")
    prof.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    prof.add_argument("--repeats", type=int, default=30, help="timed runs per round (default 30)")
    prof.add_argument("--rounds", type=int, default=3, help="interleaved rounds over a batch of signatures (default 3)")
    prof.add_argument("--stat", default="median", choices=("median", "p10", "min"),
                      help="statistic of the paired ratios (validate uses the table's): median (default), or p10/min")
    prof.add_argument("--out-dir", default=None, metavar="DIR",
                      help="folder of the table (default: your table folder, `nas --tables-dir`); an existing "
                           "table there is extended")
    prof.add_argument("--description", default=None, help="one line in the table's metadata (default: generated)")
    prof.add_argument("--boundaries", action="store_true",
                      help="also measure the precision boundaries (Q/DQ where bits change between layers; "
                           "needs --dtype arch)")
    prof.set_defaults(func=cmd_profile)

    val = command(sub, "validate", help="table vs end-to-end measured latency of random architectures",
                  examples=("nas lut validate --device x86-2vcpu --space mobilenet-c10 --n 30 --seed 3 -o val.csv",))
    _source(val)
    val.add_argument("--n", type=int, default=50, help="random architectures to measure (default 50)")
    add_seed(val, "which architectures are drawn")
    val.add_argument("--threads", type=int, default=None, help="default: the table's threads")
    val.add_argument("--archs", help="CSV with a column 'arch' instead of --n random ones (default: none)")
    val.add_argument("--rounds", type=int, default=10, help="interleaved measurement rounds (default 10)")
    val.add_argument("--calibrate", action="store_true", help="fit and store a correction from these measurements")
    add_output(val, "per-architecture CSV (with reference_ms: `nas lut adapt --measured` reads it)")
    val.set_defaults(func=cmd_validate)


def _register_transfer(sub) -> None:
    """adapt, suggest: a latency model for a new device from whole-network measurements."""
    ad = command(sub, "adapt", help="latency model for a new device from k whole-network measurements",
                 examples=("nas lut adapt --space mobilenet-c10 --from x86-2vcpu --measure-here 20 --seed 5 "
                           "--device-name here -o here.transfer.yaml",
                           "nas lut adapt --space fbnet-c100 --measured pi.csv --from raspi4 --device-name my-pi"))
    add_space(ad)
    how = ad.add_mutually_exclusive_group()
    how.add_argument("--measured", default=None,
                     help="CSV with columns arch, latency_ms (k >= 3 rows) measured elsewhere (optional column "
                          "reference_ms: their units, as `nas lut validate -o` writes) (default: none; give it or --measure-here)")
    how.add_argument("--measure-here", dest="n", type=int, default=None, metavar="N",
                     help="measure N networks picked to span the source's latency and quantized share on this "
                          "host and fit to them (20 is a good start; about a minute); the measurements are kept "
                          "beside the model (NAME.measured.csv) and reused when re-run with the same arguments; default: "
                          "give it or --measured")
    ad.add_argument("--device-name", required=True, help="name of the new device")
    ad.add_argument("--from", dest="sources", action="append", metavar="DEVICE",
                    help="a table the new device is derived from (repeatable; default: every table that covers "
                         "the space)")
    ad.add_argument("--dtype", default=None,
                    help="precision the measurements ran (--measure-here: run) at: arch (default: each layer at its "
                         "own bits; the model then predicts every dtype), fp32 or int8")
    ad.add_argument("--threads", type=int, default=None,
                    help="threads the measurements used (--measured: recorded; --measure-here: onnxruntime threads "
                         "to measure with, default the first source table's)")
    ad.add_argument("--seed", type=int, default=0, help="--measure-here: which networks are picked (default 0)")
    ad.add_argument("--rounds", type=int, default=10,
                    help="--measure-here: interleaved measurement rounds (default 10)")
    ad.add_argument("--host", default=None, metavar="TEXT",
                    help="--measured: the host the measurements were taken on, recorded in the model (default: "
                         "unknown; never this machine)")
    ad.add_argument("-o", "--output", default=None,
                    help="model file (default: NAME.transfer.yaml in your table folder, `nas --tables-dir`, "
                         "where it is found by name); re-running refits it")
    ad.set_defaults(func=cmd_adapt)

    ft = command(sub, "fit", help="per-layer table fitted from whole-network measurements (no layer timing)",
                 examples=("nas lut fit --space fbnet-c100 --measured board.csv --device-name my-board",))
    add_space(ft)
    ft.add_argument("--measured", required=True, help="CSV with columns arch, latency_ms (>= 10 rows)")
    ft.add_argument("--device-name", required=True, help="name of the table to write")
    ft.add_argument("--dtype", default=None, help="precision the measurements ran at: arch (default), fp32, int8")
    ft.add_argument("--holdout", type=float, default=0.2, help="share held out to report quality (default 0.2)")
    add_seed(ft, "which measurements are held out")
    ft.add_argument("--out-dir", default=None, metavar="DIR",
                    help="folder of the table (default: your table folder, `nas --tables-dir`)")
    ft.add_argument("--overwrite", action="store_true", help="replace an existing table (default: refuse)")
    ft.add_argument("--description", default=None, help="one line in the table's metadata (default: generated)")
    ft.set_defaults(func=cmd_fit)

    sg = command(sub, "suggest", help="which architectures to measure for `nas lut adapt`",
                 examples=("nas lut suggest --space fbnet-c100 --n 15 --from raspi4 -o measure-these.csv",))
    add_space(sg)
    sg.add_argument("--n", type=int, required=True, help="how many to measure (10-20 recommended)")
    add_seed(sg, "the random candidates")
    sg.add_argument("--from", dest="sources", action="append", metavar="DEVICE",
                    help="source tables whose features are spread (default: every table covering the space)")
    sg.add_argument("--dtype", default=None, help="precision the measurements will run at: arch (default), fp32 "
                                                  "or int8")
    sg.add_argument("--pool", type=int, default=None, help="random candidates to choose from (default max(2000, 40n))")
    sg.add_argument("--native", action="store_true", help="write the space's native encoding where it has one")
    add_output(sg, "CSV with columns arch, latency_ms (empty, to fill in)", required=True)
    sg.set_defaults(func=cmd_suggest)
