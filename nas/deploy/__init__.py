"""Train, export, quantize, verify and time chosen architectures: targets, the pipeline and the model card."""
from nas.lazy import lazy_attributes

_NAMES = {"ExportConfig": "nas.deploy.pipeline:ExportConfig", "export": "nas.deploy.pipeline:export",
          "Target": "nas.deploy.targets:Target", "target_from_arch": "nas.deploy.targets:target_from_arch",
          "targets_from_study": "nas.deploy.targets:targets_from_study"}
__getattr__, __dir__ = lazy_attributes(__name__, _NAMES)
__all__ = sorted(_NAMES)
