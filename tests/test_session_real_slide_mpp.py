"""The real TCGA slide records no µm/px (shared/data README). With ``slide_mpp: 0.25`` in the
manifest both models run on it (session and ``harm3 pcr``); without it both fail saying, in the
viewer's words, where to enter the value, and never show the feature cache's paths."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import real_file
from napari_harm3.core.cli.main import main
from napari_harm3.core.errors import MissingMetadataError, user_message
from napari_harm3.core.models.registry import zoo_models
from napari_harm3.core.session import CaseSession
from napari_harm3.core.synth.cohort import make_case


def tcga_case(root, slide, slide_mpp=None):
    """A synthetic patient's MRI with the real TCGA slide; its manifest with or without slide_mpp."""
    case = make_case(root / "mri", seed=31, case_id="TCGA-MPP", slide=False)
    manifest = yaml.safe_load(case.manifest.read_text())
    manifest["mri"] = {k: str(case.root / v) for k, v in manifest["mri"].items()}
    manifest["masks"] = {k: str(case.root / v) for k, v in manifest.get("masks", {}).items()}
    manifest["slide"] = str(slide)
    if slide_mpp is not None:
        manifest["slide_mpp"] = slide_mpp
    folder = root / ("with-mpp" if slide_mpp else "without-mpp")
    folder.mkdir()
    (folder / "case.yaml").write_text(yaml.safe_dump(manifest))
    return folder / "case.yaml"


@pytest.fixture(scope="module")
def tcga_slide(shared_data):
    return real_file(shared_data, "wsi/tcga-cr-7395-hnsc-jp2k.svs")


def test_manifest_slide_mpp_reaches_both_models(tcga_slide, tmp_path):
    manifest = tcga_case(tmp_path, tcga_slide, slide_mpp=0.25)
    session = CaseSession(device="cpu")
    session.open(manifest)
    assert session.scale.mpp == pytest.approx(0.25) and session.scale.source == "case manifest"
    assert session.slide.mpp == pytest.approx(0.25)
    pcr = session.predict("pcr")
    assert 0.0 <= pcr.probability <= 1.0 and "slide" not in pcr.missing_inputs
    assert pcr.slide_mpp == pytest.approx(0.25)
    survival = session.predict("survival")
    assert set(survival.n_patches) == {5, 10, 20} and all(n > 0 for n in survival.n_patches.values())
    session.close()
    # the command line takes the manifest's value as well
    out = tmp_path / "pcr.json"
    assert main(["pcr", str(zoo_models("pcr")[0].path), str(manifest), "--json", str(out), "--device", "cpu"]) == 0
    assert json.loads(out.read_text())["probability"] == pytest.approx(pcr.probability, abs=1e-5)


def test_without_mpp_both_models_say_where_to_enter_it(tcga_slide, tmp_path):
    session = CaseSession(device="cpu")
    session.open(tcga_case(tmp_path, tcga_slide))
    assert session.scale.mpp is None
    for analysis in ("pcr", "survival"):
        with pytest.raises(MissingMetadataError) as caught:
            session.predict(analysis)
        viewer, cli = user_message(caught.value, "viewer"), user_message(caught.value, "cli")
        assert "Case tab" in viewer and "--mpp" not in viewer and "/features/" not in viewer, viewer
        assert "--mpp" in cli
    session.close()
