"""DICOM over TLS against a real PACS: an Orthanc that takes TLS only (mutual: it checks our
certificate, we check its), certificates made by openssl for the test. Find, send and retrieve by
C-GET and by C-MOVE (Orthanc then opens TLS to our storage SCP); a peer whose certificate our CA
did not sign is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from napari_harm3.core.mri.case_volumes import read_case_volumes
from napari_harm3.core.pacs.association import PacsError
from napari_harm3.core.pacs.config import parse_pacs_config
from napari_harm3.core.pacs.query import find_series
from napari_harm3.core.pacs.store import send_folder
from napari_harm3.core.pacs.study_case import retrieve_case

pytest_plugins = ("orthanc",)


@pytest.fixture(scope="module")
def tls_server(start_orthanc, tmp_path_factory):
    from orthanc import make_certificates

    certs = make_certificates(tmp_path_factory.mktemp("certs"))
    server = start_orthanc(tls={"cert": certs["orthanc_cert"], "key": certs["orthanc_key"], "ca": certs["ca"]})
    return server, certs


def test_find_send_and_retrieve_over_tls(tls_server, pacs, tmp_path):
    server, certs = tls_server
    tls = {"ca": certs["ca"], "cert": certs["cert"], "key": certs["key"]}
    config = parse_pacs_config(server.config_dict(tls=tls))
    source = pacs.synth_case_dir / "dicom" / "t2_post"
    assert send_folder(config, source).n_ok == len(list(source.iterdir()))
    assert [s.description for s in find_series(config, pacs.synth_study_uid)] == ["T2 post FS"]
    for method in ("get", "move"):
        result = retrieve_case(parse_pacs_config(server.config_dict(tls=tls, retrieve=method)), pacs.synth_study_uid,
                               tmp_path / method)
        assert list(result.case.mri) == ["t2_post"] and result.retrieval.method == f"C-{method.upper()}"
        volume = read_case_volumes(result.case).volumes["t2_post"]
        assert volume.shape[0] == len(list(source.iterdir())) and np.isfinite(volume.data).all()


def test_peer_not_signed_by_our_ca_and_plain_dicom_to_a_tls_port_are_refused(tls_server, tmp_path):
    server, certs = tls_server
    wrong = parse_pacs_config(server.config_dict(tls={"ca": certs["other_ca"], "cert": certs["cert"],
                                                      "key": certs["key"]}, timeout=5))
    with pytest.raises(PacsError, match="cannot be reached .*TLS handshake failed") as info:
        find_series(wrong, "1.2.3")
    assert "\n" not in str(info.value)
    plain = parse_pacs_config(server.config_dict(timeout=5))
    with pytest.raises(PacsError, match=f"127.0.0.1:{server.dicom_port}"):
        find_series(plain, "1.2.3")
