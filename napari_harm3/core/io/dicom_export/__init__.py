"""The case's results as standard DICOM objects (highdicom), each in its source study, new series.

- :mod:`.segmentation` — tumour masks (and masks propagated between time points) as DICOM SEG;
- :mod:`.parametric_map` — each MRI class-activation map as a Parametric Map (32-bit float);
- :mod:`.sr` — the numbers as a TID 1500 Structured Report (:class:`~.sr.ReportNumbers`);
- :mod:`.encapsulated_pdf` — the PDF report as an Encapsulated PDF;
- :mod:`.case_objects` — all of a case's objects from plain inputs, into a folder atomically;
- :mod:`.common` — source series (headers only), UIDs, equipment, de-identification;
- :mod:`.codes` — the coded concepts, including our private scheme ``99HARM3``.

The writers take plain inputs (pydicom headers of the source series, numpy arrays on that
series' voxel grid, frozen dataclasses of numbers), so the command line and the case session
call the same functions; each has a reader that gives the values back (used by the tests).
"""
