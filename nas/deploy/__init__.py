"""Train, export, quantize, verify and time chosen architectures: targets, the pipeline and the model card."""
from nas.deploy.pipeline import ExportConfig, export
from nas.deploy.targets import Target, target_from_arch, targets_from_study

__all__ = ["ExportConfig", "Target", "export", "target_from_arch", "targets_from_study"]
