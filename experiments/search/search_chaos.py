"""Chaos run (reliability issue 28): several `nas search` workers on one PostgreSQL study, a random one SIGKILLed
every 2-5 s for a while (and restarted), then all killed and one worker left to finish the study. Checks that
the study ends whole: every killed trial re-run (following retries of retries to a finished trial), no trial
re-run twice, nothing left RUNNING or WAITING, and exactly the asked number of finished trials.

    python -m experiments.search.search_chaos               # a throwaway PostgreSQL server (.ci/start-postgres)
    python -m experiments.search.search_chaos --storage postgresql://postgres@127.0.0.1:5432/postgres

Prints a table and writes ``<out-dir>/search_chaos.json`` (out-dir: experiments/search/results; stamped with command,
commit, date, host and load).
Exit status 1 when a check fails.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time

from experiments.harness import ROOT, add_out_dir, write_results


def start_postgres() -> str:
    return subprocess.run(["bash", str(ROOT / ".ci" / "start-postgres")], check=True, capture_output=True,
                          text=True).stdout.strip()


def worker(args, seed: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", args.space, "--device", args.device,
           "--trials", str(args.trials), "--storage", args.storage, "--study", args.study, "--seed", str(seed),
           "--quiet"]
    env = {**os.environ, "NAS_HEARTBEAT_GRACE_S": str(args.grace)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def chaos(args) -> dict:
    """Run the workers, kill one every 2-5 s for ``args.kill_for`` s (restarting it), then kill them all."""
    rng = random.Random(args.seed)
    procs = [worker(args, args.seed + i) for i in range(args.workers)]
    kills, t_end = 0, time.monotonic() + args.kill_for
    while time.monotonic() < t_end:
        time.sleep(rng.uniform(2, 5))
        i = rng.randrange(len(procs))
        if procs[i].poll() is None:
            procs[i].send_signal(signal.SIGKILL)
            kills += 1
        procs[i].wait()
        procs[i] = worker(args, args.seed + 100 + kills)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
    t0 = time.monotonic()
    last = worker(args, args.seed + 999)
    _, err = last.communicate(timeout=args.finish_timeout)
    return {"kills": kills, "finisher_rc": last.returncode, "finisher_stderr": err[-2000:],
            "finish_seconds": time.monotonic() - t0}


def check(storage: str, study_name: str, trials: int) -> dict:
    """The study's state after the run, and which promises it keeps."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage)
    ts = study.get_trials(deepcopy=False)
    by_state = {s.name: sum(t.state == s for t in ts) for s in TrialState}
    retried_by: dict[int, list[int]] = {}
    for t in ts:
        if "retried_from" in t.user_attrs:
            retried_by.setdefault(int(t.user_attrs["retried_from"]), []).append(t.number)
    by_number = {t.number: t for t in ts}
    unresolved = []
    for t in ts:
        if t.state != TrialState.FAIL:
            continue
        n, seen = t.number, set()
        while by_number[n].state == TrialState.FAIL and n in retried_by and n not in seen:
            seen.add(n)
            n = retried_by[n][0]
        if by_number[n].state != TrialState.COMPLETE:
            unresolved.append(t.number)
    twice = {k: v for k, v in retried_by.items() if len(v) > 1}
    return {"states": by_state, "failed": by_state["FAIL"], "retries": sum(map(len, retried_by.values())),
            "unresolved_failures": unresolved, "retried_twice": twice,
            "ok": {"complete == trials": by_state["COMPLETE"] == trials,
                   "nothing RUNNING or WAITING": by_state["RUNNING"] == by_state["WAITING"] == 0,
                   "every killed trial re-run to completion": not unresolved,
                   "no trial re-run twice": not twice}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storage", default=None, help="PostgreSQL URL (default: start a throwaway server)")
    ap.add_argument("--study", default=None, help="study name (default: chaos-<time>)")
    ap.add_argument("--workers", type=int, default=4, help="workers on the study (default 4)")
    ap.add_argument("--trials", type=int, default=400, help="finished trials the study must end with (default 400)")
    ap.add_argument("--kill-for", type=float, default=60, help="seconds of random kills (default 60)")
    ap.add_argument("--space", default="mobilenet-c10", help="search space (default mobilenet-c10)")
    ap.add_argument("--device", default="x86-2vcpu", help="latency table (default x86-2vcpu)")
    ap.add_argument("--grace", type=float, default=10, help="NAS_HEARTBEAT_GRACE_S for the workers (default 10)")
    ap.add_argument("--finish-timeout", type=float, default=1800, help="seconds the last worker may take")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill schedule and the workers (default 0)")
    add_out_dir(ap, "search", name="search_chaos")
    args = ap.parse_args()
    args.storage = args.storage or start_postgres()
    args.study = args.study or f"chaos-{int(time.time())}"
    run = chaos(args)
    result = {"workers": args.workers, "trials": args.trials, "kill_for_s": args.kill_for,
              **run, **check(args.storage, args.study, args.trials)}
    result["storage"] = args.storage.split("@")[-1]  # no credentials in a results file
    write_results(args.out_dir, args.name, summary=result)
    print(f"kills {run['kills']}, finisher exit {run['finisher_rc']} after {run['finish_seconds']:.0f} s; "
          f"states {result['states']}; retries {result['retries']}")
    for name, ok in result["ok"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(result["ok"].values()) and run["finisher_rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
