"""Loopback SMTP outbox: the embedded email backend.

A tiny SMTP server (aiosmtpd) that accepts every message and writes it, unchanged apart from
two envelope trace headers, to ``<outbox>/<timestamp>-<n>-<subject>.eml``. ``make run`` starts
it so that the ``smtp_default`` connection delivers here instead of to real people.

Run it in the foreground until SIGTERM or SIGINT::

    python -m engagements.outbox --host 127.0.0.1 --port 8025 --dir outbox

or from tests::

    with OutboxServer(tmp_path) as outbox:
        smtplib.SMTP(outbox.host, outbox.port).send_message(msg)
        [received] = outbox.messages()

It binds a loopback address unless told otherwise: it accepts mail from anyone who can reach
it (an open relay to the disk, nothing more). Inside a private container network, where the
Airflow containers reach it by its service name, it listens on all of the container's
addresses::

    python -m engagements.outbox --host 0.0.0.0 --allow-non-loopback --port 8025 --dir outbox
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import itertools
import logging
import os
import re
import signal
import socket
import sys
import threading
import unicodedata
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
ENV_PORT = "ENGAGEMENTS_OUTBOX_PORT"
ENV_DIR = "ENGAGEMENTS_OUTBOX_DIR"
MAIL_FROM_HEADER = "X-Outbox-Mail-From"
RCPT_TO_HEADER = "X-Outbox-Rcpt-To"
_SLUG_MAX = 60


class OutboxPortInUseError(OSError):
    """The port the outbox was asked to listen on is taken by another process."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def slugify(text: str) -> str:
    """A short, ASCII, filesystem-safe rendering of a subject or Message-ID."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_text).strip("-._")
    return slug[:_SLUG_MAX].rstrip("-._")


def _message_label(data: bytes) -> str:
    headers = BytesParser(policy=policy.default).parsebytes(data, headersonly=True)
    for name in ("Subject", "Message-ID"):
        try:
            value = headers.get(name)
        except Exception:  # a malformed header must not lose the message
            value = None
        slug = slugify(str(value or ""))
        if slug:
            return slug
    return "message"


class OutboxHandler:
    """aiosmtpd handler: every accepted message becomes one ``.eml`` file in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def write(self, data: bytes) -> Path:
        """Write ``data`` atomically (temporary file, fsync, rename) and return its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        label = _message_label(data)
        with self._lock:
            while True:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                path = self.directory / f"{stamp}-{next(self._counter):04d}-{label}.eml"
                if not path.exists():
                    break
            tmp = self.directory / f".{path.name}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        return path

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        trace = (
            f"{MAIL_FROM_HEADER}: {envelope.mail_from}\r\n"
            f"{RCPT_TO_HEADER}: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode("utf-8", "surrogateescape")
        try:
            path = self.write(trace + raw)
        except OSError as exc:
            log.error("outbox: could not write a message: %s", exc)
            return "451 Requested action aborted: could not store the message"
        log.info("outbox: %s -> %s", ", ".join(envelope.rcpt_tos), path)
        return "250 Message accepted"


class _Controller(Controller):
    """aiosmtpd's Controller, with ``port=0`` meaning "any free port"."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OutboxPortInUseError(
                    exc.errno,
                    f"SMTP outbox: port {port} on {host} is already in use; stop what uses it "
                    f"or choose another port (--port, or {ENV_PORT})",
                ) from exc
            raise


def _parse(path: Path) -> EmailMessage:
    with open(path, "rb") as fh:
        return cast(EmailMessage, BytesParser(policy=policy.default).parse(fh))


class OutboxServer:
    """The outbox SMTP server, in a background thread; a context manager.

    ``port=0`` picks a free port; :attr:`port` is the real one once started. A host that is
    not a loopback address (``0.0.0.0`` in a container) is refused unless
    ``allow_non_loopback`` is true: whoever reaches the port can write to the folder.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        allow_non_loopback: bool = False,
    ) -> None:
        if not (allow_non_loopback or is_loopback(host)):
            raise ValueError(
                f"the SMTP outbox binds loopback addresses only, not {host!r}, unless "
                "allowed (--allow-non-loopback): only on a private network, such as a "
                "Docker Compose project's"
            )
        self.directory = Path(directory).resolve()
        self.host = host
        self._requested_port = port
        self._handler = OutboxHandler(self.directory)
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        if self._controller is None:
            return self._requested_port
        return self._controller.port

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> OutboxServer:
        if self._controller is not None:
            raise RuntimeError("the SMTP outbox is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._requested_port:
            _check_port_free(self.host, self._requested_port)
        controller = _Controller(self._handler, hostname=self.host, port=self._requested_port)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> OutboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def paths(self) -> list[Path]:
        """The stored messages, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    def messages(self) -> list[EmailMessage]:
        """The stored messages parsed with ``email.policy.default``, oldest first."""
        return [_parse(path) for path in self.paths()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engagements.outbox",
        description="Loopback SMTP server that writes every message it receives to a folder.",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}); a non-loopback one needs "
        "--allow-non-loopback",
    )
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow a --host that is not a loopback address, such as 0.0.0.0 inside a private "
        "container network: anyone who reaches the port can write to the folder",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get(ENV_PORT) or DEFAULT_PORT),
        help=f"port to listen on (default: ${ENV_PORT} or {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--dir",
        default=os.environ.get(ENV_DIR) or "outbox",
        help=f"folder for the .eml files (default: ${ENV_DIR} or ./outbox)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        server = OutboxServer(
            args.dir, host=args.host, port=args.port, allow_non_loopback=args.allow_non_loopback
        ).start()
    except (ValueError, OSError) as exc:
        print(f"outbox: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(
        f"outbox: listening on {server.host}:{server.port}, writing to {server.directory}",
        flush=True,
    )
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        server.stop()
    print("outbox: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
