"""Latent scores of a synthetic patient and the labels they generate.

Every phantom patient is driven by five independent standard-normal scores, drawn from the
patient's seed (see :mod:`napari_harm3.core.synth` for the whole design):

``m``   MRI response — how much the tumour shrinks between the pre- and post-treatment scans,
        plus a post-treatment T2 signal change inside the tumour.
``s``   slide pCR signal — density of lymphocyte-like dots (tumour-infiltrating lymphocytes)
        in the biopsy.
``c``   coarse slide structure — size and extent of the large tumour nests (seen at 5× and 10×).
``f``   fine slide structure — amplitude of a period-2 "chromatin" checkerboard at 20× that
        vanishes exactly in every 2×2 box mean (so it is absent at 10× and 5×).
``eps`` label noise for pCR.

Labels:

* ``pcr = 1`` when ``m + s + 0.3·eps > PCR_THRESHOLD`` (−0.35 gives ≈ 60 % pCR), so pCR is only
  partly predictable from the MRI change and partly from the slide: the two together beat either.
* Survival: log-hazard ``η = 2.25·c + 2.25·f − 0.3·pcr``; Weibull event time (shape 1.2, scale
  38 months); independent uniform follow-up censoring on [24, 120] months (≈ 35 % censored).
  Times in months, rounded to 0.1. The weights were 1.5 until generator version 2: on a 137-case
  cohort the true log-hazard then ranked survival at C 0.826 and a tiny CrossFusion reached
  0.754-0.768 (two seeds); at 2.25 the oracle is 0.879 and the same model 0.784-0.807 (three
  seeds), so the learning test has a margin instead of a coin flip.

All randomness comes from ``numpy.random.Generator`` objects derived from the seed with
:func:`seed_streams`, so one seed always gives the same patient, and the image generators
(which use other streams) never shift the latent draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: pCR when m + s + 0.3·eps exceeds this (≈ 60 % pCR)
PCR_THRESHOLD = -0.35
#: weight of the label noise eps in the pCR rule
PCR_NOISE = 0.3
#: survival model constants (see module docstring)
HAZARD_COARSE = 2.25
HAZARD_FINE = 2.25
HAZARD_PCR = -0.3
WEIBULL_SHAPE = 1.2
WEIBULL_SCALE_MONTHS = 38.0
FOLLOW_UP_MONTHS = (24.0, 120.0)

#: named random streams of one patient; their order must never change (reproducibility)
STREAMS = ("latent", "survival", "mri", "slide")


def seed_streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent seed sequences for each part of one patient (latents, survival, MRI, slide)."""
    children = np.random.SeedSequence(int(seed)).spawn(len(STREAMS))
    return dict(zip(STREAMS, children))


@dataclass(frozen=True)
class PatientLatents:
    """The hidden scores of one synthetic patient and the labels derived from them."""

    m: float
    s: float
    c: float
    f: float
    eps: float
    pcr: int
    survival_months: float
    event: int

    @property
    def log_hazard(self) -> float:
        """The true log-hazard ``2.25·c + 2.25·f − 0.3·pcr`` (what a perfect survival model ranks by)."""
        return float(log_hazard(self.c, self.f, self.pcr))

    def as_dict(self) -> dict:
        """Plain-Python mapping (for the ``synthetic:`` block of a manifest)."""
        out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out["log_hazard"] = round(float(self.log_hazard), 6)
        return out


def pcr_rule(m, s, eps):
    """pCR label(s) from the scores: 1 when ``m + s + 0.3·eps > PCR_THRESHOLD``."""
    return (np.asarray(m) + np.asarray(s) + PCR_NOISE * np.asarray(eps) > PCR_THRESHOLD).astype(int)


def log_hazard(c, f, pcr):
    """True log-hazard of the survival model."""
    return HAZARD_COARSE * np.asarray(c) + HAZARD_FINE * np.asarray(f) + HAZARD_PCR * np.asarray(pcr)


def survival_times(rng: np.random.Generator, eta) -> tuple[np.ndarray, np.ndarray]:
    """Observed times (months, 0.1 resolution) and event flags for log-hazards ``eta``.

    Weibull proportional hazards: ``T = scale · (−log U · exp(−η))^(1/shape)``; censoring time
    uniform over the follow-up window, independent of everything else.
    """
    eta = np.atleast_1d(np.asarray(eta, dtype=float))
    u = rng.random(eta.shape)
    event_time = WEIBULL_SCALE_MONTHS * (-np.log1p(-u) * np.exp(-eta)) ** (1.0 / WEIBULL_SHAPE)
    censor_time = rng.uniform(*FOLLOW_UP_MONTHS, size=eta.shape)
    observed = np.maximum(np.round(np.minimum(event_time, censor_time), 1), 0.1)
    return observed, (event_time <= censor_time).astype(int)


def draw_latents(seed: int, **overrides: float) -> PatientLatents:
    """The latent scores and labels of the patient with this seed.

    ``overrides`` fix any of ``m, s, c, f, eps`` (e.g. to render a strong responder); the labels
    are then derived from the fixed values, with the same random survival draw.
    """
    unknown = set(overrides) - {"m", "s", "c", "f", "eps"}
    if unknown:
        raise ValueError(f"unknown latent score(s): {sorted(unknown)}")
    streams = seed_streams(seed)
    scores = dict(zip(("m", "s", "c", "f", "eps"), np.random.default_rng(streams["latent"]).standard_normal(5)))
    scores.update({k: float(v) for k, v in overrides.items()})
    pcr = int(pcr_rule(scores["m"], scores["s"], scores["eps"]))
    eta = log_hazard(scores["c"], scores["f"], pcr)
    times, events = survival_times(np.random.default_rng(streams["survival"]), eta)
    return PatientLatents(
        **{k: float(v) for k, v in scores.items()},
        pcr=pcr,
        survival_months=float(times[0]),
        event=int(events[0]),
    )


def case_seed(cohort_seed: int, index: int) -> int:
    """Seed of case ``index`` in a cohort generated with ``cohort_seed`` (stable, well mixed)."""
    return int(np.random.SeedSequence([int(cohort_seed), int(index)]).generate_state(1, np.uint32)[0])


def draw_cohort_latents(n: int, seed: int) -> list[PatientLatents]:
    """The latents of the ``n`` cases a cohort with ``seed`` would contain (cheap: no images)."""
    return [draw_latents(case_seed(seed, i)) for i in range(n)]
