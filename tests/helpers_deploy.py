"""What the tests/test_deploy_* files share (no tests of its own): a small mobilenet-c10 member with every
bit-width pair of the space, a fast export recipe, tiny YAML spaces (one with two resolutions) and a study as
`nas search` writes it."""
import optuna
from onnx import TensorProto

from nas.deploy import ExportConfig
from conftest import TINY_TRAIN_YAML

SPACE = "mobilenet-c10"
# smallest widths and depths, every bit-width pair of the space somewhere
TINY = ("ir_k3_se0_relu6_w8_a8/c16:ir_k3_e1_se0_relu6_w4_a8/c32:ir_k3_e1_se0_relu_w8_a32-ir_k3_e1_se0_relu6_w4_a32"
        "/c64:ir_k3_e1_se0_relu6_w32_a8-ir_k3_e1_se0_relu6_w32_a32/c96:ir_k3_e1_se0_relu6_w8_a8-"
        "ir_k3_e1_se0_relu6_w8_a8/c160:ir_k3_e1_se0_relu6_w8_a8-ir_k3_e1_se0_hswish_w8_a8/c160:"
        "ir_k3_e1_se0_relu6_w8_a8")
OTHER = TINY.replace("_w8_a8/c160:", "_w4_a8/c160:", 1)  # a second Pareto member
FAST = ExportConfig(epochs=1, data="digits", n_train=128, calib_samples=16, rounds=1, warmup=1, repeats=3,
                    progress=False)
# the cheapest export that still trains, recalibrates BN, quantizes, evaluates and times (tiny spaces below)
TINY_FAST = ExportConfig(epochs=1, data="digits", n_train=64, bn_samples=64, calib_samples=4, test_samples=20,
                         rounds=1, warmup=1, repeats=1, progress=False)
WTYPE = {4: TensorProto.INT4, 8: TensorProto.INT8, 32: TensorProto.FLOAT}
CARD_KEYS = {"name", "space", "arch", "arch_json", "num_classes", "deployment", "params", "macs", "size_bytes_analytic", "layers",
             "bit_widths", "files", "training", "onnx_check", "quantization", "accuracy", "latency", "provenance"}

# 8 px, one channel: a network that exports in well under a second; MULTIRES has two resolutions (8 first)
TINY_SPACE = (TINY_TRAIN_YAML.replace("name: tiny-train", "name: tiny-deploy")
              .replace("Small space for training tests.", "Small space for export tests.")
              .replace("{width: 16, depth: 1, stride: 2}", "{width: 16, depth: [1, 2], stride: 2, block: {op: [ir, skip]}}"))
MULTIRES_SPACE = TINY_SPACE.replace("name: tiny-deploy", "name: tiny-multires").replace(
    "input: {resolution: 8,", "input: {resolution: [8, 16],")


def space_file(tmp_path_factory, text: str = TINY_SPACE) -> str:
    p = tmp_path_factory.mktemp("spaces") / "space.yaml"
    p.write_text(text)
    return str(p)


def make_study(path, archs: list[str], *, feasible: bool = True, device: str = "dev", name: str = "s") -> str:
    """A study as `nas search` writes it (config attribute; arch / metrics / provenance per trial)."""
    storage = f"sqlite:///{path}"
    study = optuna.create_study(storage=storage, study_name=name, directions=["maximize", "minimize"])
    study.set_user_attr("config", {"space": SPACE, "devices": [device], "objectives": ["proxy", "latency"],
                                   "proxy": "params", "data": "digits", "latency_dtype": "arch"})
    for i, a in enumerate(archs):
        metrics = {"proxy.params": 1000.0 + i, "latency_ms.dev" if device == "dev" else f"latency_ms.{device}":
                   1.0 + i, "feasible": feasible, "duplicate": False}
        study.add_trial(optuna.trial.create_trial(
            values=[1000.0 + i, 1.0 + i], user_attrs={"arch": a, "metrics": metrics,
                                                     "provenance": {"space": SPACE, "worker": 0}}))
    return storage
