"""Per-patient reports: a data object first, rendered second.

- :mod:`.model` — the frozen :class:`~.model.Report` with every number, the provenance and the
  figure data (snapshot-testable, JSON-ready, :meth:`~.model.Report.deidentified`).
- :mod:`.build` — builds a report from a case and the results of the models.
- :mod:`.render_pdf` / :mod:`.render_json` — write it (atomically) as a PDF for people and a
  JSON for machines, with the same content.

Importing this package imports neither matplotlib nor torch.
"""
