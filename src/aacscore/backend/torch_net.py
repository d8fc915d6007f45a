"""PyTorch networks as a :class:`~aacscore.backend.Net` (the ``torch`` backend; needs
``aacscore[train]``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import torch

from aacscore.backend import Backend

M = TypeVar("M", bound=torch.nn.Module)


def load_safetensors(
    module: M, path: Path, error: Callable[[str], Exception], mismatch: str = "do not fit"
) -> M:
    """Load the safetensors weights at ``path`` into ``module`` (strictly; fp16 tensors are cast
    to the module's dtypes) and return it. A file that cannot be read, or weights that do not
    fit the module, raise ``error(message)`` naming the file (``"<path>: weights <mismatch>
    (...)"`` for the latter; ``mismatch`` says against what, e.g. "do not match the plans")."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise error(f"{path}: cannot read safetensors file ({exc})") from exc
    ref = module.state_dict()
    fixed = {k: v.to(ref[k].dtype) if k in ref else v for k, v in state.items()}
    try:
        module.load_state_dict(fixed, strict=True)
    except RuntimeError as exc:
        raise error(f"{path}: weights {mismatch} ({exc})") from exc
    return module


class TorchNet:
    """A torch module in eval mode: numpy in, named numpy outputs out.

    The module may return one tensor (named ``output_names[0]``), a tuple of tensors (named in
    order) or a dict (the named entries). Inputs go to the module's device."""

    backend = Backend.TORCH

    def __init__(self, module: torch.nn.Module, output_names: Sequence[str]) -> None:
        self.module = module
        self.output_names = tuple(output_names)

    @torch.inference_mode()
    def __call__(self, x: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        m = self.module
        was_training = bool(getattr(m, "training", False))
        m.eval()
        try:
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            p = next(iter(m.parameters()), None)
            if p is not None and p.device.type != "cpu":
                t = t.to(p.device)
            out: Any = m(t)
        finally:
            m.train(was_training)
        if isinstance(out, torch.Tensor):
            outs = {self.output_names[0]: out}
        elif isinstance(out, dict):
            outs = {k: out[k] for k in self.output_names}
        else:
            outs = dict(zip(self.output_names, out, strict=True))
        return {k: v.detach().float().cpu().numpy() for k, v in outs.items()}

    def __repr__(self) -> str:
        return f"TorchNet({type(self.module).__name__})"
