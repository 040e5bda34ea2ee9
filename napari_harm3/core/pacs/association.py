"""Associations with the configured peer: the one place a PACS connection is opened.

:func:`open_association` builds a pynetdicom AE with our AE title, the config's timeouts and, when
configured, a TLS context (peer verified against the configured CA; our certificate for mutual
TLS), connects to the peer of the config (no other host is ever contacted) and turns every way
it can fail into one readable :class:`PacsError` line: nobody listening, a timeout, a refused
association with the peer's reason, no accepted presentation context.

Patient identifiers: pynetdicom logs the identifiers of requests and responses it handles as an
SCP; :func:`quiet_identifiers` switches that off unless the user asked for identifiers.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time

from pynetdicom import AE, _config, evt
from pynetdicom.status import code_to_category

from ..errors import Harm3Error
from .config import PacsConfig

LOGGER = logging.getLogger("napari_harm3.pacs")


class PacsError(Harm3Error):
    """The PACS could not do what was asked (unreachable, refused, failed operation)."""


def quiet_identifiers(show: bool = False) -> None:
    """Whether pynetdicom may log the identifiers (patient name, ID …) of the messages it handles."""

    _config.LOG_REQUEST_IDENTIFIERS = bool(show)
    _config.LOG_RESPONSE_IDENTIFIERS = bool(show)


def tls_context(config: PacsConfig, server_side: bool = False) -> ssl.SSLContext | None:
    """The TLS context for ``config.tls`` (None without TLS). Client side: the peer's certificate is
    verified against ``tls.ca`` and its name against ``tls.server_name`` (default: peer host)."""
    tls = config.tls
    if tls is None:
        return None
    purpose = ssl.Purpose.CLIENT_AUTH if server_side else ssl.Purpose.SERVER_AUTH
    try:
        context = ssl.create_default_context(purpose, cafile=str(tls.ca) if tls.ca else None)
        if tls.cert is not None:
            context.load_cert_chain(str(tls.cert), str(tls.key))
    except (ssl.SSLError, OSError) as exc:
        raise PacsError(f"{config.source or 'PACS config'}: tls: cannot load the certificates ({exc})") from None
    if server_side:
        context.verify_mode = ssl.CERT_REQUIRED if tls.ca else ssl.CERT_NONE
    return context


def make_ae(config: PacsConfig):
    """A pynetdicom AE with our AE title and the config's timeouts (no contexts yet)."""

    quiet_identifiers(config.log_identifiers)
    ae = AE(ae_title=config.ae_title)
    ae.connection_timeout = config.timeout
    ae.acse_timeout = config.timeout
    ae.dimse_timeout = config.timeout
    ae.network_timeout = config.timeout
    ae.maximum_pdu_size = 0  # no limit: large MR slices in few PDUs
    return ae


def _no_delay(event) -> None:
    """TCP_NODELAY on a new DICOM connection: a DIMSE message is several PDUs written one after
    the other, and Nagle's algorithm would hold each last small one for the peer's delayed ACK
    (~40 ms per object)."""
    sock = getattr(getattr(getattr(event.assoc, "dul", None), "socket", None), "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket (or already closed): nothing to tune
            pass


def connection_handlers():
    """Event handlers every association of ours binds (see :func:`_no_delay`)."""

    return [(evt.EVT_CONN_OPEN, _no_delay)]


def hold_reactor(assoc, timeout: float = 1.0) -> None:
    """Call right before each ``send_c_*``: wait until the association's reactor thread is
    blocked at its checkpoint, so it cannot take the peer's response off the queue.

    pynetdicom 3.0 pauses its reactor by clearing an Event and spinning until a flag says it is
    paused, but the flag is still set for a moment after the reactor passed the Event; a response
    arriving in that moment is taken by the reactor ("Received unexpected C-STORE service message")
    and ``send_c_store`` then waits for the DIMSE timeout. We saw 1 in ~2,400 C-STOREs lost so on
    this machine (TCP_NODELAY makes responses fast enough to hit the window). Waiting until the
    Event has a waiter closes the window; where the internals differ, this does nothing.
    """
    checkpoint = getattr(assoc, "_reactor_checkpoint", None)
    waiters = getattr(getattr(checkpoint, "_cond", None), "_waiters", None)
    if waiters is None:
        return
    checkpoint.clear()
    deadline = time.monotonic() + timeout
    while not waiters and assoc.is_alive() and time.monotonic() < deadline:
        time.sleep(0.0002)


def _rejection_reason(assoc) -> str:
    primitive = getattr(getattr(assoc, "acceptor", None), "primitive", None)
    try:
        return f"{primitive.reason_str} ({primitive.result_str.lower()}, from the {primitive.source_str.lower()})"
    except Exception:  # noqa: BLE001 - no rejection details sent
        return "no reason given"


def associate(ae, config: PacsConfig, what: str, **kwargs):
    """An established association with ``config.peer`` or a :class:`PacsError` in one line."""
    peer = config.peer
    tls = tls_context(config)
    tls_args = (tls, config.tls.server_name or peer.host) if tls is not None else None
    LOGGER.info("%s: associating %s → %s", what, config.ae_title, peer)
    handlers = list(kwargs.pop("evt_handlers", [])) + connection_handlers()
    try:
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, tls_args=tls_args,
                             evt_handlers=handlers, **kwargs)
    except (OSError, ssl.SSLError) as exc:
        raise PacsError(f"{config.where()}: cannot connect ({exc})") from None
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise PacsError(f"{config.where()} refused the association for {what}: {_rejection_reason(assoc)}; "
                        f"check the AE titles in {config.source or 'the PACS config'} and that the PACS knows us "
                        f"as {config.ae_title}")
    answered = getattr(getattr(assoc, "acceptor", None), "primitive", None) is not None
    if answered and not assoc.accepted_contexts:
        raise PacsError(f"{config.where()} accepted none of the services needed for {what}")
    if answered:
        raise PacsError(f"{config.where()} aborted the association for {what}")
    tls_hint = " or TLS handshake failed" if tls is not None else ""
    raise PacsError(f"{config.where()} cannot be reached (connection refused or timed out{tls_hint}); "
                    f"check host, port and that the PACS is running")


@contextlib.contextmanager
def association(ae, config: PacsConfig, what: str, **kwargs):
    """``with association(ae, config, "C-FIND") as assoc:`` — released (or aborted) on exit."""
    assoc = associate(ae, config, what, **kwargs)
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    else:
        if assoc.is_established:
            assoc.release()
    finally:
        ae.shutdown()


def status_text(status) -> str:
    """``0xC000 (Failure: …)``-style text of a DIMSE status dataset (or 'no response')."""
    if status is None or "Status" not in status:
        return "no response (timeout or aborted association)"

    code = int(status.Status)
    comment = str(status.get("ErrorComment", "") or "")
    return f"0x{code:04X} ({code_to_category(code).lower()}{': ' + comment if comment else ''})"
