"""The one place where ``device="auto"`` is resolved."""

from __future__ import annotations

import importlib.util

from .._checks import check_option


def resolve_device(device: str = "auto") -> str:
    """Resolve ``"auto"`` to ``"cuda"`` when torch sees a GPU, else ``"cpu"``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}

    Returns
    -------
    str
        A concrete torch device string.
    """
    if device is None:
        device = "auto"
    device = str(device)
    if device.startswith("cuda:"):
        return device
    check_option("device", device, ("auto", "cpu", "cuda", "mps"))
    if device != "auto":
        return device
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def onnx_providers(device: str) -> list[str]:
    """onnxruntime execution providers for a resolved device, falling back to CPU."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    providers = []
    if device.startswith("cuda") and "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers
