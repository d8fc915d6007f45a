"""The view and region classifier of the input gate: is this a lateral lumbar radiograph?

A small strided CNN (:class:`ViewNet`) on a letterboxed, percentile-normalised copy of the film
(:func:`preprocess`) gives the probabilities of nine classes (:class:`ViewClass`); the film and
its horizontal mirror image are averaged (patients face either way). The label is the most
probable class; its :data:`VIEW_ERROR_CODES` entry says why such a film is refused, except that
a film whose ``p_lateral`` reaches the model's acceptance threshold (``accept_p_lateral`` in its
``config.json``, chosen on validation films when it was trained; :data:`ACCEPT_P_LATERAL` for a
model without one) is never refused.

The weights (``models/view``) were trained on procedural images only (see the model card).
The torch network (:class:`~aacscore.gate.view_net.ViewNet`) is imported on first use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aacscore.backend import (
    Backend,
    Net,
    as_net,
    graph_path,
    load_net,
    require_torch,
    resolve_backend,
)
from aacscore.backend.resample import resize_bilinear
from aacscore.codes import ErrorCode

if TYPE_CHECKING:
    from aacscore.gate.view_net import ViewNet

PACKAGE_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "view"
"""The shipped view model."""
WEIGHTS_FILE = "view.safetensors"
CONFIG_FILE = "config.json"
INPUT_SIZE = 128
"""Side of the square network input (px)."""
FILTERS: tuple[int, ...] = (8, 16, 32, 64, 128)
ACCEPT_P_LATERAL = 0.1
"""Acceptance threshold of a model whose ``config.json`` names none: a film with at least this
probability of being a lateral lumbar film is never refused.

Low on purpose: a refusal needs the classifier to be nearly sure. Between the threshold and 0.5
the film is scored and flagged ``view_uncertain``
(:data:`aacscore.pipeline.VIEW_UNCERTAIN_BELOW`)."""
ACCEPT_P_LATERAL_RANGE = (0.02, 0.5)
"""Thresholds a model's ``accept_p_lateral`` may take."""
PERCENTILES = (1.0, 99.0)
"""Grey levels mapped to 0 and 1 by :func:`preprocess`."""


class ViewClass(str, Enum):
    """What a film shows (the values are what results and JSON show)."""

    LATERAL_LUMBAR = "lateral_lumbar"
    AP_LUMBAR = "ap_lumbar"
    CHEST = "chest"
    LATERAL_THORACIC = "lateral_thoracic"
    CERVICAL = "cervical"
    PELVIS_HIP = "pelvis_hip"
    LUMBAR_SPOT = "lumbar_spot"
    OTHER_BODY_PART = "other_body_part"
    NOT_RADIOGRAPH = "not_radiograph"

    def __str__(self) -> str:
        return self.value


CLASSES: tuple[ViewClass, ...] = tuple(ViewClass)
"""Output order of the network."""

VIEW_ERROR_CODES: dict[ViewClass, ErrorCode | None] = {
    ViewClass.LATERAL_LUMBAR: None,
    ViewClass.AP_LUMBAR: ErrorCode.WRONG_VIEW,
    ViewClass.CHEST: ErrorCode.WRONG_REGION,
    ViewClass.LATERAL_THORACIC: ErrorCode.WRONG_REGION,
    ViewClass.CERVICAL: ErrorCode.WRONG_REGION,
    ViewClass.PELVIS_HIP: ErrorCode.WRONG_REGION,
    ViewClass.LUMBAR_SPOT: ErrorCode.FIELD_INCOMPLETE,
    ViewClass.OTHER_BODY_PART: ErrorCode.WRONG_REGION,
    ViewClass.NOT_RADIOGRAPH: ErrorCode.NOT_RADIOGRAPH,
}
"""Why a film of each class is refused (None: accepted)."""

DESCRIPTIONS: dict[ViewClass, str] = {
    ViewClass.LATERAL_LUMBAR: "a lateral lumbar film",
    ViewClass.AP_LUMBAR: "an AP/PA lumbar film",
    ViewClass.CHEST: "a chest film",
    ViewClass.LATERAL_THORACIC: "a lateral thoracic spine film",
    ViewClass.CERVICAL: "a cervical spine film",
    ViewClass.PELVIS_HIP: "a pelvis or hip film",
    ViewClass.LUMBAR_SPOT: "a lumbar spot film (L1-L4 not all on it)",
    ViewClass.OTHER_BODY_PART: "a film of another body part (limb, hand, foot or skull)",
    ViewClass.NOT_RADIOGRAPH: "not a radiograph (photo, drawing, screenshot or label map)",
}


IGNORE_VIEW_HINT = "use --ignore-view to score it anyway"

SPINE_REFUSALS_EXPLAINED: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.SPINE_NOT_FOUND,
        ErrorCode.IMPLAUSIBLE_SPINE,
        ErrorCode.FIELD_INCOMPLETE,
        ErrorCode.BAND_OUTSIDE_FILM,
    }
)
"""Refusals of the spine and field stages that the view classifier's verdict may explain: they
are reported with the code of the most probable other class when that class is likelier than a
lateral lumbar film once the refusal is known (:meth:`ViewPrediction.explained_refusal`)."""

REFUSAL_LIKELIHOOD_RATIO = 0.4
"""How much less often the spine and field stages refuse a lateral lumbar film than a film of
another class that the classifier let through: P(refused | lateral) / P(refused | other). On a
refused film the most probable other class is the likelier explanation (Bayes) when its
probability is at least this multiple of ``p_lateral``. Measured: the stages refuse 0.7-6 % of
simulated laterals (final set, extended variety, family B) and 9 of 12 synthetic negatives that
pass the classifier (0.75); the leads' first real panel had 5 of 16 laterals fail the spine
checks (0.31): 0.31 / 0.75, the conservative end, is 0.4."""

SPINE_DOUBT_FLAGS: frozenset[str] = frozenset({"level_uncertain", "orientation_uncertain"})
"""Flags of a scored film that corroborate the view classifier's doubt: a film whose most
probable class is not a lateral lumbar film and whose reading carries one of them is refused
with that class's code (:meth:`ViewPrediction.corroborated_refusal`). Only the spine stage's
own statements that it cannot tell the levels or the side: ``low_quality`` (unfamiliar ground,
which real films trip routinely) is a witness only beside a confident alternative
(:data:`CONFIDENT_ALTERNATIVE`), and ``spine_fallback`` (the normal path for another renderer's
films; on simulated extended-variety laterals it refused 2 of 300 correctly read films) is
not one."""

CONFIDENT_ALTERNATIVE = 0.5
"""Probability of the most probable class, when it is not a lateral lumbar film, from which a
``low_quality`` reading (the networks' familiarity score, whose ``view`` component cannot trip
on an accepted film) corroborates it: the classifier holds the other class likelier than all
the rest together, and the spine and score networks find the film unfamiliar."""


class ViewModelError(RuntimeError):
    """The view model folder is missing or its files do not fit together."""


@dataclass(frozen=True)
class ViewPrediction:
    """The classifier's answer for one film."""

    label: ViewClass
    probabilities: Mapping[str, float]
    p_lateral: float
    accept_p_lateral: float = ACCEPT_P_LATERAL
    """The model's acceptance threshold (a film at or above it is never refused)."""
    ruled_out: Mapping[str, float] = field(default_factory=dict)
    """Classes that other evidence rules out (:meth:`ruling_out`), with the probability the
    classifier gave them; ``probabilities`` are then renormalised over the rest."""

    def ruling_out(self, classes: Iterable[ViewClass]) -> ViewPrediction:
        """This prediction conditioned on the film not being of ``classes`` (never the lateral
        lumbar class): their probability set to 0, the rest renormalised, the label re-chosen.
        Unchanged when they hold no probability or all of it."""
        removed = {
            c.value: self.probabilities.get(c.value, 0.0)
            for c in classes
            if c is not ViewClass.LATERAL_LUMBAR and self.probabilities.get(c.value, 0.0) > 0.0
        }
        kept = 1.0 - sum(removed.values())
        if not removed or kept <= 0.0:
            return self
        probs = {k: 0.0 if k in removed else v / kept for k, v in self.probabilities.items()}
        label = max(probs, key=lambda k: probs[k])
        return ViewPrediction(
            ViewClass(label),
            probs,
            probs.get(ViewClass.LATERAL_LUMBAR.value, 0.0),
            self.accept_p_lateral,
            {**self.ruled_out, **removed},
        )

    @property
    def accepted(self) -> bool:
        """True when the film may be scored."""
        return self.refuse_code is None

    @property
    def refuse_code(self) -> ErrorCode | None:
        """Why the film is refused, or None (``p_lateral >= accept_p_lateral``)."""
        if self.p_lateral >= self.accept_p_lateral:
            return None
        return VIEW_ERROR_CODES[self.label]

    @property
    def reason(self) -> str:
        """One line for a human, e.g. "the image looks like a chest film (p=0.97), not a
        lateral lumbar film"."""
        p = self.probabilities.get(self.label.value, 0.0)
        if self.refuse_code is None:
            return f"the image looks like a lateral lumbar film (p={self.p_lateral:.2f})"
        return (
            f"the image looks like {DESCRIPTIONS[self.label]} (p={p:.2f}), not a lateral lumbar "
            f"film (p={self.p_lateral:.2f})"
        )

    @property
    def alternative(self) -> ViewClass | None:
        """The most probable class when it is not a lateral lumbar film, else None."""
        return None if self.label is ViewClass.LATERAL_LUMBAR else self.label

    @property
    def runner_up(self) -> ViewClass | None:
        """The most probable class other than a lateral lumbar film (None if none has p > 0)."""
        others = [
            (p, c) for c, p in self.probabilities.items() if c != ViewClass.LATERAL_LUMBAR.value
        ]
        p, c = max(others, default=(0.0, ""))
        return ViewClass(c) if p > 0.0 else None

    def _refusal_for_alternative(self, why: str) -> tuple[ErrorCode, str] | None:
        """The code of the most probable class when it is another one, with a message joining
        the classifier's verdict and ``why``; None for a lateral argmax."""
        alt = self.alternative
        code = None if alt is None else VIEW_ERROR_CODES[alt]
        if alt is None or code is None:
            return None
        p = self.probabilities.get(alt.value, 0.0)
        return code, (
            f"the image looks more like {DESCRIPTIONS[alt]} (p={p:.2f}) than a lateral lumbar "
            f"film (p={self.p_lateral:.2f}), and {why}; {IGNORE_VIEW_HINT}"
        )

    def explained_refusal(self, code: ErrorCode, problem: str) -> tuple[ErrorCode, str] | None:
        """The code and message of a spine- or field-stage refusal (``code``, ``problem``) when
        this prediction explains it better, else None: the most probable other class, when its
        probability is at least :data:`REFUSAL_LIKELIHOOD_RATIO` x ``p_lateral`` (its
        :data:`VIEW_ERROR_CODES` entry, with both reasons)."""
        if code not in SPINE_REFUSALS_EXPLAINED:
            return None
        if self.alternative is not None:
            refusal = self._refusal_for_alternative(problem)
            return None if refusal is None or refusal[0] == code else refusal
        alt = self.runner_up
        alt_code = None if alt is None else VIEW_ERROR_CODES[alt]
        if alt is None or alt_code is None or alt_code == code:
            return None
        p = self.probabilities.get(alt.value, 0.0)
        if p < REFUSAL_LIKELIHOOD_RATIO * self.p_lateral:
            return None
        return alt_code, (
            f"{problem}; the image may be {DESCRIPTIONS[alt]} (p={p:.2f}, lateral lumbar film "
            f"p={self.p_lateral:.2f}), likelier than a lateral film the spine stage cannot "
            f"read; {IGNORE_VIEW_HINT}"
        )

    def corroborated_refusal(self, flags: Sequence[str]) -> tuple[ErrorCode, str] | None:
        """The code and message refusing a scored film whose most probable class is another
        one and whose reading carries a flag of :data:`SPINE_DOUBT_FLAGS` (or ``low_quality``
        when that class has p >= :data:`CONFIDENT_ALTERNATIVE`), else None."""
        witnesses = set(SPINE_DOUBT_FLAGS)
        alt = self.alternative
        if alt is not None and self.probabilities.get(alt.value, 0.0) >= CONFIDENT_ALTERNATIVE:
            witnesses.add("low_quality")
        doubts = [f for f in dict.fromkeys(flags) if f in witnesses]
        if not doubts:
            return None
        spine = [f for f in doubts if f in SPINE_DOUBT_FLAGS]
        why = [f"its spine reading is unsure ({', '.join(spine)})"] if spine else []
        if "low_quality" in doubts:
            why.append("the models find it unfamiliar (low_quality)")
        return self._refusal_for_alternative(" and ".join(why))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "label": self.label.value,
            "p_lateral": round(self.p_lateral, 4),
            "accept_p_lateral": round(self.accept_p_lateral, 4),
            "refuse_code": None if self.refuse_code is None else self.refuse_code.value,
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "ruled_out": {k: round(v, 4) for k, v in self.ruled_out.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ViewPrediction:
        """The prediction back from :meth:`as_dict` (probabilities as rounded there)."""
        return cls(
            ViewClass(d["label"]),
            {k: float(v) for k, v in d["probabilities"].items()},
            float(d["p_lateral"]),
            float(d.get("accept_p_lateral", ACCEPT_P_LATERAL)),
            {k: float(v) for k, v in d.get("ruled_out", {}).items()},
        )


# -------------------------------------------------------------------------------------------
# Preprocessing (shared by training and inference)


def preprocess(pixels: npt.ArrayLike, size: int = INPUT_SIZE) -> npt.NDArray[np.float32]:
    """The network input of a film: ``(size, size)`` float32 in [0, 1].

    The image is resized (antialiased) so that its longer side is ``size``, keeping the aspect
    ratio, its 1st/99th grey-level percentiles are mapped to 0/1 (so any positive scaling or
    offset of the intensities gives the same input), and it is centred on a black square.
    A colour ``(h, w, 3|4)`` array is averaged over its channels.
    """
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].mean(axis=-1)
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(f"expected a 2-D image, got shape {a.shape}")
    a = np.where(np.isfinite(a), a, 0.0).astype(np.float32)
    h, w = a.shape
    scale = size / max(h, w)
    nh, nw = max(1, min(size, round(h * scale))), max(1, min(size, round(w * scale)))
    r = a.astype(np.float64)
    if (nh, nw) != (h, w):  # as F.interpolate(bilinear, antialias=nh < h, align_corners=False)
        r = resize_bilinear(a, (nh, nw), antialias=nh < h).astype(np.float64)
    lo, hi = np.percentile(r, PERCENTILES)
    span = float(hi - lo)
    if span <= 1e-6 * max(1.0, abs(float(hi))):
        r = np.zeros_like(r)
    else:
        r = np.clip((r - lo) / span, 0.0, 1.0)
    out = np.zeros((size, size), dtype=np.float32)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = r
    return out


# -------------------------------------------------------------------------------------------
# Network


VIEW_OUTPUTS: tuple[str, ...] = ("logits",)
"""Output of the view graph: (B, classes) logits of preprocessed (B, 1, s, s) inputs."""


def mirrored_probabilities_array(net: Net | Any, batch: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Class probabilities of ``(n, 1, s, s)`` inputs, averaged with their mirror images
    (``net``: a :class:`~aacscore.backend.Net` or a torch ``ViewNet``)."""
    x = np.asarray(batch, dtype=np.float32)
    n = x.shape[0]
    logits = as_net(net, VIEW_OUTPUTS)(np.concatenate([x, x[..., ::-1]], axis=0))
    z = logits[VIEW_OUTPUTS[0]].astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = 0.5 * (p[:n] + p[n:])
    return out


def prediction(
    probs: Sequence[float], accept_p_lateral: float = ACCEPT_P_LATERAL
) -> ViewPrediction:
    """The :class:`ViewPrediction` of a probability vector in :data:`CLASSES` order."""
    values = [float(v) for v in probs]
    if len(values) != len(CLASSES):
        raise ValueError(f"expected {len(CLASSES)} probabilities, got {len(values)}")
    k = int(np.argmax(values))
    return ViewPrediction(
        label=CLASSES[k],
        probabilities={c.value: v for c, v in zip(CLASSES, values, strict=True)},
        p_lateral=values[CLASSES.index(ViewClass.LATERAL_LUMBAR)],
        accept_p_lateral=accept_p_lateral,
    )


class ViewClassifier:
    """``config.json`` + ``view.safetensors`` (or its ONNX graph) of a view model folder;
    ``net`` is a :class:`~aacscore.backend.Net` or a torch ``ViewNet``."""

    def __init__(self, net: ViewNet | Net, config: Mapping[str, Any], model_dir: Path) -> None:
        self.config = dict(config)
        self.model_dir = model_dir
        self.input_size = int(self.config.get("input_size", INPUT_SIZE))
        self.accept_p_lateral = accept_threshold(self.config, model_dir)
        self._torch_net: ViewNet | None = None
        if isinstance(net, Net):
            self.runner = net
        else:
            self._torch_net = net.eval()
            self.runner = as_net(net, VIEW_OUTPUTS)

    @property
    def backend(self) -> Backend:
        """The backend that runs the network (``onnx`` or ``torch``)."""
        return self.runner.backend

    @property
    def net(self) -> ViewNet:
        """The torch ``ViewNet`` (built from the weights on first use when the classifier runs
        on ONNX Runtime; needs PyTorch)."""
        if self._torch_net is None:
            require_torch("the view classifier's torch network")
            self._torch_net = _load_view_net(self.config, self.model_dir)
        return self._torch_net

    @classmethod
    def load(
        cls, dir: str | Path | None = None, backend: str | Backend | None = None
    ) -> ViewClassifier:
        """The model of folder ``dir`` (default: the shipped ``aacscore/models/view``), run by
        ``backend`` (``onnx``: the exported graph; ``torch``; ``auto``/None: onnx when the graph
        fits the weights).

        Raises:
            ViewModelError: files missing or not matching.
            BackendError: the backend cannot run here (package or graph missing).
        """
        d = Path(dir) if dir is not None else PACKAGE_MODEL_DIR
        cfg_path, w_path = d / CONFIG_FILE, d / WEIGHTS_FILE
        if not cfg_path.is_file() or not w_path.is_file():
            raise ViewModelError(f"{d}: no {CONFIG_FILE} + {WEIGHTS_FILE} here")
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
        classes = tuple(config.get("classes", [c.value for c in CLASSES]))
        if classes != tuple(c.value for c in CLASSES):
            raise ViewModelError(f"{cfg_path}: classes {classes} do not match {CLASSES}")
        which = resolve_backend(backend, w_path)
        net = load_net(which, w_path, lambda: _load_view_net(config, d), VIEW_OUTPUTS)
        return cls(net, config, d)

    def predict_inputs(self, inputs: npt.ArrayLike) -> list[ViewPrediction]:
        """Predictions of preprocessed ``(n, s, s)`` inputs (mirror-averaged)."""
        x = np.ascontiguousarray(inputs, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        probs = mirrored_probabilities_array(self.runner, x[:, None])
        return [prediction(p.tolist(), self.accept_p_lateral) for p in probs]

    def predict(self, pixels: npt.ArrayLike) -> ViewPrediction:
        """The prediction of a 2-D film in [0, 1] (any size, portrait or landscape)."""
        return self.predict_inputs(preprocess(pixels, self.input_size)[None])[0]

    def weight_files(self) -> list[Path]:
        """The files that determine the classifier's output (and the ONNX graph run in place
        of the weights on the onnx backend)."""
        files = [self.model_dir / CONFIG_FILE, self.model_dir / WEIGHTS_FILE]
        if self.backend == Backend.ONNX:
            files.append(graph_path(self.model_dir / WEIGHTS_FILE))
        return files


def accept_threshold(config: Mapping[str, Any], model_dir: Path | None = None) -> float:
    """The acceptance threshold of a model's config (:data:`ACCEPT_P_LATERAL` when it names
    none).

    Raises:
        ViewModelError: the threshold is outside :data:`ACCEPT_P_LATERAL_RANGE`.
    """
    t = float(config.get("accept_p_lateral", ACCEPT_P_LATERAL))
    lo, hi = ACCEPT_P_LATERAL_RANGE
    if not lo <= t <= hi:
        where = f"{model_dir / CONFIG_FILE}: " if model_dir is not None else ""
        raise ViewModelError(f"{where}accept_p_lateral {t} outside {lo}-{hi}")
    return t


def _load_view_net(config: Mapping[str, Any], d: Path) -> ViewNet:
    """The torch ``ViewNet`` of a model folder (float32 weights)."""
    from aacscore.backend.torch_net import load_safetensors
    from aacscore.gate.view_net import ViewNet

    net = ViewNet(tuple(config.get("filters", FILTERS)), len(CLASSES))
    mismatch = f"do not match {d / CONFIG_FILE}"
    return load_safetensors(net, d / WEIGHTS_FILE, ViewModelError, mismatch).eval()


def __getattr__(name: str) -> Any:
    """The torch network and its helper, imported on first use (training imports them here)."""
    if name in ("ViewNet", "mirrored_probabilities"):
        from aacscore.gate import view_net

        return getattr(view_net, name)
    raise AttributeError(f"module 'aacscore.gate.view' has no attribute {name!r}")
