"""The clinician's workflow without Qt: model runs, overlay LayerData, results text, report.

Glue between the core (predictors, report) and the workflow tab (``_qt/workflow_panel.py``);
everything here runs in a worker thread or a test without a viewer:

- :func:`zoo_models` — the model zoo's folders of one analysis (``"pcr"`` / ``"survival"``);
- :func:`load_pcr_model` / :func:`load_survival_model` and :func:`run_pcr` / :func:`run_survival`
  — the predictors' own ``predict_case`` on a loaded ensemble (loaded once per folder and device;
  slide features are cached by the predictors under the case's features folder);
- :func:`gradcam_layers` — Grad-CAM maps as ``image`` LayerData on their volume's affine;
- :func:`heatmap_layer` — per-patch slide scores painted at their level-0 coordinates, as an
  ``image`` LayerData in the slide layer's µm (``scale``/``translate`` from the slide's mpp);
- :func:`results_text` — every number as plain text (what the results box shows and copies);
- :func:`build_gui_report` / :func:`write_report_files` — the per-patient report from the results
  already held (no model is run again), PDF + JSON written atomically, never overwritten silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .core.errors import Harm3Error
from .core.progress import ProgressFn, report, scaled

#: analysis → model card kinds it accepts (as the report's model selection)
KINDS = {"pcr": ("harm3-fusion", "harm3"), "survival": ("crossfusion",)}
TITLES = {"pcr": "pCR (HARM3-Fusion)", "survival": "Survival (CrossFusion)"}
#: survival attention maps in display order
SCALES = ("5x", "10x", "20x", "final")
TOP_K = 6


def zoo_models(analysis: str, root=None) -> list:
    """The zoo's model folders for ``analysis`` ("pcr" or "survival"), in folder order."""
    from .core.models.zoo import list_models

    return [m for m in list_models(root) if m.kind in KINDS[analysis]]


def model_readme(folder) -> str:
    """The model card for people (README.md), else one rendered from card.json."""
    from .core.models.zoo import read_model_folder, render_card_markdown

    path = Path(folder) / "README.md"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return render_card_markdown(read_model_folder(folder).card)


def check_model(analysis: str, folder):
    """The :class:`ModelFolder` at ``folder`` if it is a model of ``analysis``; else Harm3Error."""
    from .core.models.zoo import read_model_folder

    model = read_model_folder(folder)
    if model.kind not in KINDS[analysis]:
        raise Harm3Error(f"{folder} holds a {model.kind!r} model, not a {TITLES[analysis]} model")
    return model


# -- model runs (worker bodies) ---------------------------------------------------------------
def load_pcr_model(folder, device: str = "auto"):
    """HARM3-Fusion fold ensemble of ``folder`` on ``device``."""
    from .core.predict.pcr import load_ensemble

    return load_ensemble(check_model("pcr", folder), device=device)


def load_survival_model(folder, device: str = "auto"):
    from .core.predict.survival import load_model

    check_model("survival", folder)
    return load_model(folder, device=device)


@dataclass(frozen=True, eq=False)
class SurvivalRun:
    """A survival prediction and the top-k patches per scale (level-0 RGB) for the gallery."""

    prediction: object
    gallery: dict  # scale → ((x, y, size, score, rgb), ...)


def run_pcr(ensemble, case, progress: ProgressFn | None = None):
    """HARM3-Fusion pCR of ``case`` (a ``core.io.case.Case``) → ``PcrPrediction``."""
    from .core.predict.pcr import predict_case

    return predict_case(ensemble, case, progress=progress)


def run_survival(ensemble, case, progress: ProgressFn | None = None, top_k: int = TOP_K) -> SurvivalRun:
    """CrossFusion survival of ``case`` and its top-k patches per scale read at level 0."""
    from .core.predict.survival import predict_case

    prediction = predict_case(ensemble, case, progress=scaled(progress, 0.0, 0.9))
    gallery = {}
    if case.slide is not None:
        from .core.wsi.slide_source import open_wsi

        slide = open_wsi(case.slide, mpp=case.slide_mpp)
        for n, scale in enumerate(s for s in SCALES if s in prediction.top_patches):
            report(progress, 0.9 + 0.1 * n / len(SCALES), f"top patches {scale}")
            size = int(prediction.attention[scale].patch_size)
            gallery[scale] = tuple((p.x, p.y, size, p.score, read_patch(slide, p.x, p.y, size))
                                   for p in prediction.top_patches[scale][:top_k])
    report(progress, 1.0, "survival done")
    return SurvivalRun(prediction=prediction, gallery=gallery)


def read_patch(slide, x: int, y: int, size: int, max_side: int = 0) -> np.ndarray:
    """(size, size, 3) uint8 RGB of the level-0 region at (x, y); ``max_side`` > 0 subsamples."""
    region = np.asarray(slide.read_region((int(x), int(y)), 0, (int(size), int(size))))
    if region.shape[-1] == 4:  # RGBA (OpenSlide, premultiplied): composite onto white
        alpha = region[..., 3:4].astype(np.float32) / 255.0
        region = (region[..., :3].astype(np.float32) + 255.0 * (1.0 - alpha)).clip(0, 255).astype(np.uint8)
    region = np.ascontiguousarray(region[..., :3], dtype=np.uint8)
    if max_side and region.shape[0] > max_side:
        step = int(np.ceil(region.shape[0] / max_side))
        region = np.ascontiguousarray(region[::step, ::step])
    return region


# -- overlays as LayerData ----------------------------------------------------------------------
def gradcam_layers(prediction, colormap: str = "inferno") -> dict:
    """{sequence: LayerData} of the Grad-CAM maps, each on its own volume's affine (mm)."""
    out = {}
    for seq, vmap in dict(prediction.gradcam or {}).items():
        if vmap is None:
            continue
        kwargs = {"name": f"Grad-CAM {seq}", "affine": np.asarray(vmap.affine, dtype=float), "colormap": colormap,
                  "blending": "additive", "opacity": 0.6, "contrast_limits": (0.0, 1.0),
                  "metadata": {"harm3_kind": "gradcam", "harm3_sequence": seq}}
        out[seq] = (np.asarray(vmap.data, dtype=np.float32), kwargs, "image")
    return out


def heatmap_layer(name: str, coords, scores, patch_size: int, slide_shape, mpp: float,
                  colormap: str = "turbo", metadata: Optional[dict] = None) -> tuple:
    """Per-patch ``scores`` at level-0 ``coords`` (x, y) as an ``image`` LayerData over the slide.

    The raster (``patch_size/4`` level-0 px per pixel) is cropped to the slide's level-0
    ``slide_shape`` (rows, cols) (CLAM pads patches running over the edge), and placed with
    ``scale``/``translate`` in the slide layer's world units (µm; ``mpp`` = the slide layer's
    scale), so heatmap and slide line up pixel for pixel.
    """
    from .core.explain.crossfusion_attention import paint

    layer = paint(name, 0, coords, scores, int(patch_size))
    data = layer.data
    pixel = float(layer.scale[0])
    (t_row, t_col) = layer.translate
    # raster pixel i covers level-0 [t + (i - 0.5) * pixel + 0.5, …): keep those wholly on the slide
    rows = int(np.clip(np.floor((slide_shape[0] - (t_row - pixel / 2 + 0.5)) / pixel), 0, data.shape[0]))
    cols = int(np.clip(np.floor((slide_shape[1] - (t_col - pixel / 2 + 0.5)) / pixel), 0, data.shape[1]))
    data = np.ascontiguousarray(data[:rows, :cols])
    # napari: world = mpp × level-0 pixel index (pixel centres), as the slide layer
    kwargs = {"name": name, "scale": (pixel * mpp, pixel * mpp), "translate": (t_row * mpp, t_col * mpp),
              "colormap": colormap, "blending": "translucent", "opacity": 0.5, "contrast_limits": (0.0, 1.0),
              "metadata": {"harm3_kind": "slide_heatmap", **(metadata or {})}}
    return (data, kwargs, "image")


def patch_at(coords, patch_size: int, x: float, y: float) -> Optional[int]:
    """Index of the patch whose level-0 square contains (x, y), or None (last one wins on overlap)."""
    coords = np.asarray(coords)
    inside = ((coords[:, 0] <= x) & (x < coords[:, 0] + patch_size) & (coords[:, 1] <= y) & (y < coords[:, 1] + patch_size))
    hits = np.flatnonzero(inside)
    return int(hits[-1]) if hits.size else None


# -- results as text ----------------------------------------------------------------------------
def _names(items) -> str:
    return ", ".join(items) if items else "none"


def pcr_text(prediction) -> list:
    p = prediction
    lines = [f"pCR model: {p.model}",
             f"p(pCR) = {p.probability:.3f} ± {p.spread:.3f} (mean ± sd over {len(p.fold_probabilities)} fold models)",
             "fold probabilities: " + ", ".join(f"{v:.3f}" for v in p.fold_probabilities),
             f"predicted: {'pCR' if p.probability >= p.threshold else 'no pCR'} (threshold {p.threshold:.2f}"
             + (f"; training Youden threshold {p.youden_threshold:.2f})" if p.youden_threshold is not None else ")"),
             f"missing inputs: {_names(p.missing_inputs)}"]
    if p.missing_inputs:
        lines.append(f"note: {_names(p.missing_inputs)} absent; the model ran with its placeholders for them")
    return lines


def survival_text(prediction) -> list:
    p = prediction
    lines = [f"survival model: {p.model}",
             f"risk = {p.risk:.3f} ± {p.risk_spread:.3f} (mean ± sd over {len(p.fold_risks)} fold models; higher = worse)"]
    if p.risk_group is None:
        lines.append("risk group: unknown (the model card has no training-cohort threshold)")
    else:
        lines.append(f"risk group: {p.risk_group} (threshold {p.risk_threshold:.3f} = median risk of the training cohort)")
    lines.append("S(t): " + "; ".join(f"{m:g} mo {s:.3f}" for m, s in zip(p.months, p.survival_curve)))
    lines.append("patches: " + ", ".join(f"{m}x {n}" for m, n in sorted(p.n_patches.items())))
    lines.append(f"missing inputs: {_names(p.missing_inputs)}")
    return lines


def results_text(case_id: str, pcr=None, survival=None, notes=()) -> str:
    """All numbers of the held results as plain text (copyable)."""
    lines = [f"case: {case_id}", "research use only: not for clinical decisions", ""]
    lines += pcr_text(pcr) if pcr is not None else ["pCR: not run"]
    lines.append("")
    lines += survival_text(survival) if survival is not None else ["survival: not run"]
    if notes:
        lines += [""] + [f"note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


# -- the report from the results held ----------------------------------------------------------
def build_gui_report(case, pcr=None, pcr_model=None, survival=None, survival_model=None, notes=(),
                     progress: ProgressFn | None = None):
    """The report of ``case`` from predictions already made (``pcr_model``/``survival_model``: their folders)."""
    from .core.models.zoo import read_model_folder
    from .core.report.build import build_report_from_results
    from .core.report.integration import case_inputs, pcr_result, survival_result

    report(progress, 0.0, "report: reading the case")
    loaded = case_inputs(case)
    notes = list(notes)
    if pcr is None:
        notes.append("pCR analysis not run in this session")
    if survival is None:
        notes.append("Survival analysis not run in this session")
    return build_report_from_results(
        loaded.summary, loaded.volumes, loaded.slide,
        pcr=None if pcr is None else pcr_result(pcr), survival=None if survival is None else survival_result(survival),
        pcr_model=None if pcr_model is None else read_model_folder(pcr_model),
        survival_model=None if survival_model is None else read_model_folder(survival_model),
        notes=notes, extra_inputs=loaded.extra_inputs, progress=scaled(progress, 0.2, 0.8))


def report_paths(pdf_path) -> tuple:
    """(PDF, JSON) paths: the JSON sits next to the PDF with the same stem."""
    pdf = Path(pdf_path)
    if pdf.suffix.lower() != ".pdf":
        pdf = pdf.with_name(pdf.name + ".pdf")
    return pdf, pdf.with_suffix(".json")


def write_report_files(report_obj, pdf_path, overwrite: bool = False, progress: ProgressFn | None = None) -> tuple:
    """Write PDF + JSON atomically; an existing file is refused (both checked before writing) unless ``overwrite``."""
    from .core.report.render_json import write_report_json
    from .core.report.render_pdf import write_report_pdf

    pdf, json_path = report_paths(pdf_path)
    existing = [p for p in (pdf, json_path) if p.exists()]
    if existing and not overwrite:
        raise Harm3Error(f"{', '.join(str(p) for p in existing)} exists; choose another name or allow replacing it")
    write_report_json(report_obj, json_path, overwrite=overwrite)
    write_report_pdf(report_obj, pdf, overwrite=overwrite, progress=scaled(progress, 0.8, 1.0))
    return pdf, json_path


def export_report(case, pdf_path, overwrite: bool = False, progress: ProgressFn | None = None, **results) -> tuple:
    """Worker body of "Export report…": build from the held results, then write PDF + JSON."""
    built = build_gui_report(case, progress=scaled(progress, 0.0, 0.8), **results)
    return write_report_files(built, pdf_path, overwrite=overwrite, progress=progress)
