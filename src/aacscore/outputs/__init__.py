"""What a scored film is written as: ``results.csv`` rows (:mod:`.results_csv`), the case JSON
(:mod:`.case_json`), the overlay picture (:mod:`.overlay`) and DICOM SR/SC (:mod:`.dicom`).

Each writer reads the typed :class:`aacscore.results.Result` and its stage results.
"""
