"""Align every case of a cohort, one Dask task per case (a local cluster by default).

Like slide extraction (``core/wsi/distributed.py``, whose :func:`make_client` this uses): a
:class:`distributed.LocalCluster` of ``workers`` single-threaded worker processes, or the
cluster at ``scheduler`` (every worker must see the case folders at the same paths). Each task
runs :func:`registration_case.align_case`, so done sequences are kept and interrupted cases
resume on a rerun; a case that fails is reported in its outcome and the others go on.
"""

from __future__ import annotations

import dataclasses
import os

from distributed import as_completed

from ..errors import Cancelled
from ..progress import ProgressFn, report
from ..wsi.distributed import make_client
from .registration import RegistrationConfig
from .registration_case import CaseAlignment, align_case


def align_case_task(manifest: str, config: RegistrationConfig, force: bool, threads: int) -> CaseAlignment:
    """The task run on a worker (SimpleITK limited to ``threads`` so workers do not contend)."""
    return align_case(manifest, dataclasses.replace(config, threads=config.threads or threads), force)


def align_cohort(manifests, config: RegistrationConfig | None = None, force: bool = False,
                 scheduler: str | None = None, workers: int = 2, client=None,
                 progress: ProgressFn | None = None) -> list:
    """:class:`CaseAlignment` of each manifest (in the order given). ``progress`` is called as
    cases finish; raising ``Cancelled`` from it cancels the cases not yet done."""
    config = config or RegistrationConfig()
    manifests = [str(m) for m in manifests]
    if not manifests:
        return []
    workers = max(1, int(workers))
    threads = max(1, (os.cpu_count() or 1) // workers)
    own_client = client is None
    client = client or make_client(scheduler, workers, processes=workers > 1)
    try:
        futures = {client.submit(align_case_task, m, config, force, threads, key=f"harm3-align-{k}-{m}", pure=False): k
                   for k, m in enumerate(manifests)}
        outcomes = [None] * len(manifests)
        report(progress, 0.0, f"0/{len(manifests)} cases")
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                outcome = future.result()
                outcomes[futures[future]] = outcome
                report(progress, done / len(manifests), f"{done}/{len(manifests)} cases ({outcome.case_id})")
        except Cancelled:
            client.cancel(list(futures))
            raise
        return outcomes
    finally:
        if own_client:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
