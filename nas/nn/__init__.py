"""Architecture -> runnable models: a torch network (``build``), its fake-quantized copy for scoring
(``fakequant``), its ONNX file and onnxruntime session (``onnx``) and its deployed, quantized ONNX file
(``quantize``). torch and onnxruntime are imported only when these are used."""
from nas.lazy import lazy_attributes

_NAMES = {"build_model": "nas.nn.build:build_model", "build_layer": "nas.nn.build:build_layer",
          "Network": "nas.nn.build:Network", "export_onnx": "nas.nn.onnx:export_onnx",
          "ort_session": "nas.nn.onnx:ort_session", "quantize": "nas.nn.quantize"}
__getattr__, __dir__ = lazy_attributes(__name__, _NAMES)
__all__ = sorted(_NAMES)
