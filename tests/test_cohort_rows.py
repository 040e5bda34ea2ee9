"""The predictions CSV, the model references of a batch run, the resume key, bad cohort tables."""

from __future__ import annotations

import shutil

import pytest

from napari_harm3.core.cohort.model_refs import choose_models, model_ref, weights_sha256
from napari_harm3.core.cohort.rows import COLUMNS, CaseRow, read_predictions, write_predictions
from napari_harm3.core.errors import Harm3Error, InputFileError
from napari_harm3.core.hashing import sha256_file
from napari_harm3.core.io.cohort import read_cohort_table
from napari_harm3.core.models.zoo import read_model_folder
from napari_harm3.core.resources import models_dir


def test_rows_read_back_exactly(tmp_path):
    rows = (CaseRow("A", "ok", pcr_probability=0.1 + 0.2, pcr_spread=1e-17, pcr_folds=5, risk=-2.5642547845840453,
                    risk_group="high", missing_inputs=("t2_post", "slide"), pcr_model="m", seconds=0.5),
            CaseRow("B, with a comma", "skipped", reason='slide: not found: /x/"b".tiff'))
    path = write_predictions(rows, tmp_path / "p.csv")
    assert read_predictions(path) == rows
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert not list(tmp_path.glob(".*partial"))


def test_a_foreign_or_damaged_table_is_refused(tmp_path):
    other = tmp_path / "cohort.csv"
    other.write_text("case_id,manifest\nA,a\n")
    with pytest.raises(InputFileError, match="is not a harm3 predictions table"):
        read_predictions(other)
    path = write_predictions([CaseRow("A", "ok")], tmp_path / "p.csv")
    path.write_text(path.read_text().replace(",ok,", ",done,"))
    with pytest.raises(InputFileError, match="row 2: status 'done' is not one of"):
        read_predictions(path)


def test_model_digest_is_sha256sum_of_the_folder_sums_and_choice_rules(tmp_path):
    zoo = models_dir()
    for name in ("harm3-demo", "crossfusion-demo"):
        assert weights_sha256(read_model_folder(zoo / name)) == sha256_file(zoo / name / "SHA256SUMS")
    models, notes = choose_models(zoo=zoo)
    assert (models.pcr.name, models.survival.name, notes) == ("harm3-demo", "crossfusion-demo", [])
    models, notes = choose_models(models=[zoo / "crossfusion-demo"])
    assert models.pcr is None and models.survival.analysis == "survival"
    with pytest.raises(Harm3Error, match="not a pcr model"):
        choose_models(pcr_model=zoo / "crossfusion-demo")
    with pytest.raises(Harm3Error, match="two pcr models"):
        choose_models(models=[zoo / "harm3-demo", zoo / "harm3-demo"])
    with pytest.raises(Harm3Error, match="do not combine"):
        choose_models(pcr_model=zoo / "harm3-demo", models=[zoo / "crossfusion-demo"])
    # a zoo with one model: the other analysis is not run, and a note says so
    shutil.copytree(zoo / "harm3-demo", tmp_path / "zoo" / "harm3-demo")
    models, notes = choose_models(zoo=tmp_path / "zoo")
    assert models.survival is None and notes == [f"no survival model in the zoo ({tmp_path / 'zoo'}): survival not predicted"]
    # a folder whose weights are not listed cannot be identified
    (tmp_path / "zoo" / "harm3-demo" / "SHA256SUMS").unlink()
    with pytest.raises(Harm3Error, match="no SHA256SUMS"):
        model_ref(tmp_path / "zoo" / "harm3-demo")


@pytest.mark.parametrize("lines, message", [
    (["case_id,manifest,pcr,pcr", "A,a,1,1"], "line 1 (header): column 'pcr' appears 2 times"),
    (["case_id,manifest,pcr,evnt", "A,a,1,1"], "line 1 (header): unknown column 'evnt'; did you mean 'event'?"),
    (["case_id,manifest,pcr", "A,a,1", "B,b,0,7"], "row 3: 4 cells, but the header has 3 columns"),
    (["case_id,manifest,survival_months", "A,a,-3"], "row 2, column 'survival_months': must not be negative"),
])
def test_bad_cohort_tables_name_the_row(tmp_path, lines, message):
    table = tmp_path / "cohort.csv"
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError) as caught:
        read_cohort_table(table)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_extra_columns_that_are_not_misspellings_are_allowed(tmp_path):
    table = tmp_path / "cohort.csv"
    table.write_text("case_id,manifest,pcr,site,notes\nA,a,1,Leeds,first\n")
    (entry,) = read_cohort_table(table)
    assert entry.case_id == "A" and entry.labels.pcr == 1
