"""emonb-fernet in 8-bit integers for the CPU: ONNX export, static quantization, calibration.

The trained network (``emonb_fernet_fer.pt``) is exported to ONNX without its temperature,
quantized by ONNX Runtime (static, per-channel int8 weights, uint8 activations whose ranges are
the minimum and maximum seen on a fixed, seeded sample of FER2013 Training crops; the last linear
layer stays in float so that the probabilities keep their resolution), and then calibrated again:
the temperature is fitted on the validation split (PublicTest, deduplicated), on the quantized
network's own logits, and written into the graph as a final division. Nothing here runs at
analysis time; :class:`emonb.models.face.fernet.FerNetInt8Model` runs the resulting file.
``scripts/quantize_face_expression.py`` reproduces the shipped file.

Building needs the ``onnx`` package (``pip install emonb[test]``); running needs only ONNX Runtime.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = ["CALIBRATION", "export_onnx", "quantize_onnx", "append_temperature", "calibration_sample",
           "onnx_logits", "one_thread_session"]

#: Quantization settings in one place.
CALIBRATION = {"images": 1024, "seed": 0, "batch": 64, "method": "MinMax", "format": "QDQ",
               "per_channel": True, "weights": "int8", "activations": "uint8", "float_ops": ["Gemm"],
               "opset": 17}


def calibration_sample(train_idx: np.ndarray, n: int = CALIBRATION["images"],
                       seed: int = CALIBRATION["seed"]) -> np.ndarray:
    """``n`` Training indices drawn without replacement by a seeded generator, sorted."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.asarray(train_idx), min(int(n), len(train_idx)), replace=False))


def export_onnx(model, path: Path) -> Path:
    """The FerNet ``model`` (eval mode, temperature set aside) as an ONNX file with a free batch size."""
    import torch

    class _Logits(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.logits(x)

    model = model.eval()
    example = torch.zeros(2, 1, 48, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its successor
        torch.onnx.export(_Logits(model), example, str(path), input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, opset_version=CALIBRATION["opset"],
                          dynamo=False)
    return Path(path)


def quantize_onnx(src: Path, dst: Path, calibration: np.ndarray) -> Path:
    """Static int8 quantization of ``src`` into ``dst``; ``calibration``: inputs (N, 1, 48, 48) float32."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batch = CALIBRATION["batch"]

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(calibration):
                return None
            self.i += batch
            return {"x": np.ascontiguousarray(calibration[self.i - batch:self.i], np.float32)}

    pre = Path(dst).with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre))
    keep_float = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type in CALIBRATION["float_ops"]]
    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    quantize_static(str(pre), str(dst), _Reader(), quant_format=QuantFormat[CALIBRATION["format"]],
                    per_channel=CALIBRATION["per_channel"], activation_type=types[CALIBRATION["activations"]],
                    weight_type=types[CALIBRATION["weights"]],
                    calibrate_method=CalibrationMethod[CALIBRATION["method"]], nodes_to_exclude=keep_float)
    pre.unlink()
    return Path(dst)


def append_temperature(path: Path, temperature: float) -> Path:
    """Rewrite the ONNX file so that its output is the logits divided by ``temperature``."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    out = g.output[0]
    raw = out.name + "_uncalibrated"
    for node in g.node:
        node.output[:] = [raw if o == out.name else o for o in node.output]
    g.initializer.append(numpy_helper.from_array(np.array(temperature, np.float32), "temperature"))
    g.node.append(helper.make_node("Div", [raw, "temperature"], [out.name], name="calibration"))
    onnx.checker.check_model(m)
    tmp = Path(str(path) + ".tmp")
    onnx.save(m, str(tmp))
    tmp.replace(path)
    return Path(path)


def one_thread_session(path: Path):
    """An ONNX Runtime session of the file on one CPU thread (as emonb runs the int8 network)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def onnx_logits(path: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Outputs (N, 7) of the ONNX file on inputs (N, 1, 48, 48), one thread."""
    sess = one_thread_session(path)
    return np.concatenate([sess.run(None, {"x": np.ascontiguousarray(x[s:s + batch], np.float32)})[0]
                           for s in range(0, len(x), batch)])
