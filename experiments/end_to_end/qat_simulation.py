"""Does QAT fine-tune against the noise the deployment has? (issue 30: why QAT lifts V3-Large and not p080).

For each (model, seed) trained under a recipe: the float network's test accuracy, the same weights under
:class:`nas.nn.fakequant.QuantAware` at all-int8 (what QAT trains against), and the onnxruntime int8 PTQ file's
accuracy from end_to_end's units. Fake quantization far from onnxruntime for one model and near it for another
would mean QAT fine-tunes one of them to the wrong noise. Prints the table, writes
``<out-dir>/<recipe>/qat_simulation.{csv,json}`` (stamped). About 7 min of one core per (model, seed) (two 10,000-image passes).

    python -m experiments.end_to_end.qat_simulation --models mobilenetv3-large front-s3-p080-t147 --seeds 0
"""
from __future__ import annotations

import argparse
import json

import pandas as pd

from experiments.end_to_end import end_to_end as e2e
from experiments.harness import add_out_dir, write_results


def simulate(model: e2e.Model, seed: int) -> dict:
    from nas.latency.signatures import deploy
    from nas.layers import plan
    from nas.nn.fakequant import QuantAware
    from nas.space import load_space
    from nas.train.loop import evaluate

    space = load_space(model.space)
    arch = space.parse(model.arch)
    train, test = e2e.load_data(space, arch, seed)
    net, _ = e2e.shared_float(model, seed, space, arch, train)
    float_acc = evaluate(net, test)
    with QuantAware(net, [deploy(s, "int8") for s in plan(arch, space)]):
        fake = evaluate(net.eval(), test)
    ort = json.loads((e2e.kept_of(model, seed) / "int8-ptq" / "result.json").read_text())["acc_deployed"]
    return {"name": model.name, "seed": seed, "acc_float": float_acc, "acc_fake_quant_int8": fake,
            "acc_onnxruntime_int8_ptq": ort}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", choices=tuple(e2e.RECIPES), default=e2e.RECIPE.name)
    ap.add_argument("--models", nargs="+", default=["mobilenetv3-large", "front-s3-p080-t147"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    add_out_dir(ap, "end_to_end")  # end_to_end's: its units are read from there, the results written beside them
    args = ap.parse_args()
    torch.set_num_threads(1)
    e2e.RESULTS, e2e.RECIPE = args.out_dir, e2e.RECIPES[args.recipe]
    rows = [simulate(m, s) for s in args.seeds for m in e2e.models_named(args.models)]
    print(pd.DataFrame(rows).to_string(index=False))
    write_results(e2e.recipe_dir(), "qat_simulation", rows=rows, summary={"recipe": e2e.RECIPE.name})


if __name__ == "__main__":
    main()
