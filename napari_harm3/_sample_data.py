"""Sample data: the demo patient, a synthetic head-and-neck phantom (no real patient).

``File > Open Sample > napari-harm3 > HARM3 demo patient`` adds the phantom's four MRI volumes
(T1/T2 before and after treatment, each on its own grid with its world affine in mm) and the
tumour masks. The first call generates the case into the cache (about half a minute,
:func:`napari_harm3.core.synth.demo.demo_case`); later calls read it from there. For the linked
2×2 MRI grid and the biopsy slide, open ``case.yaml`` from the case panel (or ``harm3 demo``).
"""

from __future__ import annotations


def demo_patient() -> list[tuple]:
    """LayerData of the demo patient: MRI volumes, then tumour masks."""
    import dataclasses

    from ._layers import case_layer_data
    from .core.session import open_case_data
    from .core.io.case import load_case
    from .core.synth.demo import demo_case

    case = load_case(demo_case())
    case = dataclasses.replace(case, slide=None)  # the slide is in µm, the MRI in mm: not mixed here
    return case_layer_data(open_case_data(case)).mri_layer_data()
