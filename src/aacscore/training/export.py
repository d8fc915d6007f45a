"""Export of trained weights: safetensors (fp16 when it changes nothing), installation (with
the ONNX graphs re-exported beside the weights and checked against torch)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

logger = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-4
"""Largest |onnx - torch| output difference an installed graph may show on random inputs."""


def cpu_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of a network's weights."""
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


def fp16_roundtrip(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors rounded to fp16 and back (to test what fp16 weights would predict)."""
    return {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}


def save_weights(
    module_or_state: nn.Module | Mapping[str, torch.Tensor],
    path: Path,
    fp16: bool,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Save a state dict as safetensors (floating tensors cast to fp16 when asked)."""
    state = (
        module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    )
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        t = v.detach().cpu().contiguous()
        if fp16 and t.is_floating_point():
            t = t.half()
        out[k] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(metadata) if metadata is not None else {}
    meta.setdefault("format", "pt")
    meta.setdefault("dtype", "float16" if fp16 else "float32")
    save_file(out, str(path), metadata=meta)
    return path


def install_model(
    model_dir: Path, names: Sequence[str], dest: Path, *, export_onnx: bool = True
) -> Path:
    """Copy the exported files ``names`` of ``model_dir`` to ``dest``.

    With ``export_onnx`` the ONNX graphs of the folder's networks are first re-exported in
    ``model_dir`` from its weights and checked against torch (:data:`ONNX_TOLERANCE`), then
    installed with them, so that ``dest`` never holds graphs of earlier weights; when the
    export or the check fails nothing is copied.

    Raises:
        ExportError: the folder holds no exportable model, or a graph does not match torch.
    """
    from aacscore.training.export_onnx import export_checked

    graphs = export_checked(model_dir, ONNX_TOLERANCE) if export_onnx else []
    dest.mkdir(parents=True, exist_ok=True)
    files = [*names, *(g.name for g in graphs if g.name not in names)]
    for name in files:
        shutil.copy2(model_dir / name, dest / name)
    logger.info("installed %s to %s", ", ".join(files), dest)
    return dest
