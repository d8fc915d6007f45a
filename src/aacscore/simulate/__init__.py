"""Simulator of lateral lumbar spine radiographs with exact Kauppila ground truth.

This is a scientific phantom: anatomy (:mod:`.anatomy`), aortic calcification and distractors
(:mod:`.calcification`), the imaging chain (:mod:`.render`), the DICOM writer (:mod:`.dicom`),
batch generation (:mod:`.dataset`) and a contact sheet (:mod:`.gallery`). Each module's docstring
lists what is modelled, the parameter ranges and what is not modelled.

The ground truth is measured on the rendered calcification mask (never sampled separately):
see :func:`aacscore.simulate.calcification.measure_truth`.
"""

from aacscore.simulate.calcification import SimulationError
from aacscore.simulate.case import OVERRIDES, SimulatedCase, simulate_case
from aacscore.simulate.dataset import (
    TRUTH_COLUMNS,
    AnnotationError,
    DatasetSummary,
    load_case_annotations,
    simulate_dataset,
    write_case,
)
from aacscore.simulate.dicom import write_dicom
from aacscore.simulate.gallery import write_gallery

__all__ = [
    "OVERRIDES",
    "TRUTH_COLUMNS",
    "AnnotationError",
    "DatasetSummary",
    "SimulatedCase",
    "SimulationError",
    "load_case_annotations",
    "simulate_case",
    "simulate_dataset",
    "write_case",
    "write_dicom",
    "write_gallery",
]
