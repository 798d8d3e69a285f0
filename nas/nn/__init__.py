"""Architecture -> runnable models: a torch network (``build``), its fake-quantized copy for scoring
(``fakequant``), its ONNX file and onnxruntime session (``onnx``) and its deployed, quantized ONNX file
(``quantize``). torch and onnxruntime are imported only when these are used."""
import importlib

_LAZY = {"build_model": "nas.nn.build", "build_layer": "nas.nn.build", "Network": "nas.nn.build",
         "export_onnx": "nas.nn.onnx", "ort_session": "nas.nn.onnx", "quantize": "nas.nn.quantize"}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if name == "quantize" else getattr(module, name)
    raise AttributeError(f"module 'nas.nn' has no attribute {name!r}")


__all__ = sorted(_LAZY)
