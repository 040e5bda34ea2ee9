"""Cohorts: batch predictions over a cohort table, and its external validation.

- :mod:`.rows` — :class:`~.rows.CaseRow`, one case's predictions, and the predictions CSV;
- :mod:`.model_refs` — which model folders a batch runs (names and weight sha256);
- :mod:`.fingerprint` — the resume key of a case (its input files' sha256 + the models');
- :mod:`.case_row` — :func:`~.case_row.predict_case_row`, the per-case work (injectable);
- :mod:`.runner` — :func:`~.runner.run_cohort`, resumable, in this process or on Dask distributed;
- :mod:`.validation` — AUC, Brier, calibration, C-index, Kaplan–Meier by risk group, bootstrap;
- :mod:`.summary` / :mod:`.summary_pdf` / :mod:`.summary_plots` — ``summary.csv``,
  ``summary_metrics.csv`` and ``summary.pdf`` (:func:`~.summary.write_cohort_summary`).
"""
