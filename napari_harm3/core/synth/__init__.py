"""Synthetic phantom patients: MRI, biopsy slide, labels — seeded, deterministic, in the package.

They feed the tests, the sample-data menu, the demo and the models' learning checks, so the
design below is a contract (``latent.py`` holds the constants).

Latent scores per patient, independent N(0, 1), drawn from the patient's seed:

* ``m`` — **MRI response.** Post/pre tumour volume ratio ``1.35 / (1 + e^{2(m + 0.3)})``
  (≈ 1.24 at m = −1.5, 0.48 at 0, 0.01 at 2: strong responders shrink to almost nothing,
  non-responders stay or grow), plus a post-treatment drop of the tumour's T2 signal (up to
  35 %) and enhancement growing with m (``mri_phantom.py``).
* ``s`` — **slide pCR signal.** Density of lymphocyte-like small dark round dots (radius
  3–4 px at 20×) in the tissue, ∝ e^{0.75 s}; visible at 20× and 10× (``slide_phantom.py``).
* ``c`` — **coarse slide structure.** Size and extent of the large tumour nests (5×, 10×).
* ``f`` — **fine slide structure.** A period-2 checkerboard (±δ grey levels, δ = 8 + 4f,
  clipped to 1…20) inside tumour nests at 20×; its 2×2 box mean is exactly zero, so it is
  absent from the 10× and 5× pyramid levels (exact 2×2 box means of level 0).
* ``eps`` — label noise.

Labels: ``pcr = 1[m + s + 0.3·eps > −0.35]`` (≈ 60 % pCR; neither the MRI nor the slide alone
predicts it fully, both together do better). Survival: Weibull (shape 1.2, scale 38 months,
median ≈ 26 months) with log-hazard ``2.25·c + 2.25·f − 0.3·pcr``, uniform censoring on
[24, 120] months (≈ 35 % censored): a model needs both the coarse (5×/10×) and the fine (20×)
scale.

Images: T1 (contrast) and T2 before and after treatment on different grids (T2 coarser
in-plane) in one frame of reference; tumour masks per scan; an H&E-like slide (20×,
0.5 µm/px) written as a pyramidal TIFF. Same seed → identical arrays and slide pixels.

Modules: ``latent`` (scores, labels), ``mri_phantom``, ``slide_phantom``, ``cohort``
(``make_case``, ``make_cohort``: files on disk), ``demo`` (``demo_case``: the cached demo).
"""

from . import cohort
from .demo import demo_case
from .latent import PatientLatents, case_seed, draw_cohort_latents, draw_latents

__all__ = ["PatientLatents", "case_seed", "draw_cohort_latents", "draw_latents", "make_case", "make_cohort", "demo_case"]


def __getattr__(name):  # heavy generators (scipy, cv2, nibabel) load on first use
    if name in ("make_case", "make_cohort"):

        return getattr(cohort, name)
    if name == "demo_case":

        return demo_case
    raise AttributeError(name)
