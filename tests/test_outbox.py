"""The loopback SMTP outbox: what a sender gives it is what lands on disk."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import textwrap
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from engagements.outbox import (
    MAIL_FROM_HEADER,
    RCPT_TO_HEADER,
    OutboxPortInUseError,
    OutboxServer,
    slugify,
)

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^\d{8}T\d{12}Z-(?P<n>\d{4})-(?P<label>[A-Za-z0-9._-]+)\.eml$")


@pytest.fixture
def outbox(tmp_path: Path):
    with OutboxServer(tmp_path / "outbox") as server:
        yield server


def _send(server: OutboxServer, message: EmailMessage) -> None:
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.send_message(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_one_message(command: list[str], cwd: Path, address: str, port: int) -> str:
    """Run the outbox command, send it one message at ``address``, stop it with SIGTERM (it
    must exit 0); its first line of output."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        with smtplib.SMTP(address, port, timeout=10) as client:
            client.send_message(_plain())
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    return first_line


def _plain() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "2i2c Engagements <engagements@2i2c.org>"
    message["To"] = "Ada Lovelace <ada@openscience.example.org>"
    message["Cc"] = "bd@2i2c.org, support@2i2c.org"
    message["Subject"] = "Welcome to 2i2c: Open Science Collective / next steps"
    message["Message-ID"] = make_msgid(domain="2i2c.org")
    message.set_content("Hello Ada,\n\nWelcome aboard.\n")
    return message


def test_plain_message_is_written_with_its_headers(outbox: OutboxServer) -> None:
    sent = _plain()
    _send(outbox, sent)

    [path] = outbox.paths()
    match = NAME.match(path.name)
    assert match, path.name
    assert match["n"] == "0001"
    assert match["label"] == "Welcome-to-2i2c-Open-Science-Collective-next-steps"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files

    [received] = outbox.messages()
    assert received["From"] == sent["From"]
    assert received["To"] == sent["To"]
    assert received["Cc"] == "bd@2i2c.org, support@2i2c.org"
    assert received["Subject"] == sent["Subject"]
    assert received["Message-ID"] == sent["Message-ID"]
    assert received.get_content_type() == "text/plain"
    assert received.get_content() == "Hello Ada,\n\nWelcome aboard.\n"
    # The SMTP envelope is recorded too: Cc (and Bcc) recipients are in it.
    assert received[MAIL_FROM_HEADER] == "engagements@2i2c.org"
    assert received[RCPT_TO_HEADER] == (
        "ada@openscience.example.org, bd@2i2c.org, support@2i2c.org"
    )


def test_multipart_alternative_keeps_both_parts(outbox: OutboxServer) -> None:
    sent = _plain()
    del sent["Subject"]
    sent["Subject"] = "Rollout meeting: pick a time ✔"
    sent.add_alternative(
        "<html><body><p>Hello Ada,</p><p><a href='https://cal.com/x'>Book</a></p></body></html>",
        subtype="html",
    )
    sent["Bcc"] = "archive@2i2c.org"
    _send(outbox, sent)

    [path] = outbox.paths()
    assert NAME.match(path.name)["label"] == "Rollout-meeting-pick-a-time"
    [received] = outbox.messages()
    assert isinstance(received, EmailMessage)
    assert received.get_content_type() == "multipart/alternative"
    assert received["Subject"] == "Rollout meeting: pick a time ✔"
    assert [part.get_content_type() for part in received.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert received.get_body(("plain",)).get_content() == "Hello Ada,\n\nWelcome aboard.\n"
    assert "<a href='https://cal.com/x'>Book</a>" in received.get_body(("html",)).get_content()
    assert received["Bcc"] is None  # smtplib strips Bcc from the data ...
    assert "archive@2i2c.org" in received[RCPT_TO_HEADER]  # ... but not from the envelope


def test_messages_are_numbered_in_order_and_named_by_message_id_without_subject(
    outbox: OutboxServer,
) -> None:
    first = _plain()
    second = _plain()
    del second["Subject"]
    del second["Message-ID"]
    second["Message-ID"] = "<deck-ready.openscience@2i2c.org>"
    _send(outbox, first)
    _send(outbox, second)

    names = [NAME.match(p.name) for p in outbox.paths()]
    assert [(m["n"], m["label"]) for m in names] == [
        ("0001", "Welcome-to-2i2c-Open-Science-Collective-next-steps"),
        ("0002", "deck-ready.openscience-2i2c.org"),
    ]
    assert [m["Message-ID"] for m in outbox.messages()] == [
        first["Message-ID"],
        "<deck-ready.openscience@2i2c.org>",
    ]


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Café résumé: Δ report", "Cafe-resume-report"),
        ("../../etc/passwd", "etc-passwd"),
        ("   ", ""),
        ("x" * 200, "x" * 60),
    ],
)
def test_slugify_is_filesystem_safe(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_connection_refused_after_stop(tmp_path: Path) -> None:
    server = OutboxServer(tmp_path).start()
    port = server.port
    assert port > 0
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, timeout=5)


def test_binds_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        OutboxServer(tmp_path, host="0.0.0.0")


def test_all_addresses_when_allowed(tmp_path: Path) -> None:
    """On 0.0.0.0 (a compose service) it answers on every address, not only 127.0.0.1."""
    with OutboxServer(tmp_path, host="0.0.0.0", allow_non_loopback=True) as server:
        # 127.0.0.2 is loopback too on Linux, but a server bound to 127.0.0.1 would refuse it.
        with smtplib.SMTP("127.0.0.2", server.port, timeout=10) as client:
            client.send_message(_plain())
        [received] = server.messages()
    assert received["Subject"] == _plain()["Subject"]


def test_command_line_binds_all_addresses_only_when_allowed(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    command = [sys.executable, "-m", "engagements.outbox", "--host", "0.0.0.0"]
    command += ["--port", str(port), "--dir", "mail"]
    refused = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 2
    assert "--allow-non-loopback" in refused.stderr

    first_line = _serve_one_message([*command, "--allow-non-loopback"], tmp_path, "127.0.0.2", port)
    assert f"listening on 0.0.0.0:{port}" in first_line, first_line
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1


def test_port_in_use_is_named(tmp_path: Path, outbox: OutboxServer) -> None:
    with pytest.raises(OutboxPortInUseError, match=f"port {outbox.port} "):
        OutboxServer(tmp_path / "other", port=outbox.port).start()


def test_command_line_runs_until_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "engagements.outbox", "--port", str(port), "--dir", "mail"]
    first_line = _serve_one_message(command, tmp_path, "127.0.0.1", port)
    assert f"listening on 127.0.0.1:{port}" in first_line, first_line
    [eml] = (tmp_path / "mail").glob("*.eml")
    assert "Welcome-to-2i2c" in eml.name


def test_command_line_reports_a_busy_port(tmp_path: Path, outbox: OutboxServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engagements.outbox", "--port", str(outbox.port), "--dir", "m"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "plugins")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"port {outbox.port} on 127.0.0.1 is already in use" in result.stderr


def test_airflow_smtp_hook_delivers_to_the_outbox_with_the_env_sh_connection(
    tmp_path: Path, outbox: OutboxServer
) -> None:
    """scripts/env.sh's AIRFLOW_CONN_SMTP_DEFAULT works with the smtp provider's hook."""
    script = textwrap.dedent(
        """
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id="smtp_default") as hook:
            hook.send_email_smtp(
                to="ada@openscience.example.org",
                subject="Hook check",
                html_content="<p>Hello from Airflow</p>",
            )
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ENGAGEMENTS_"))}
    env["ENGAGEMENTS_OUTBOX_PORT"] = str(outbox.port)
    command = (
        'source "$1/scripts/env.sh" && export AIRFLOW_HOME="$2" '
        '&& echo "$AIRFLOW_CONN_SMTP_DEFAULT" > "$2/conn.json" && exec "$3" -c "$4"'
    )
    home = tmp_path / "airflow-home"
    home.mkdir()
    result = subprocess.run(
        ["bash", "-c", command, "-", str(REPO), str(home), sys.executable, script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    connection = json.loads((home / "conn.json").read_text())
    assert connection["conn_type"] == "smtp"
    assert (connection["host"], connection["port"]) == ("127.0.0.1", outbox.port)
    [received] = outbox.messages()
    assert received["Subject"] == "Hook check"
    assert received["From"] == "engagements@2i2c.org"
    assert received["To"] == "ada@openscience.example.org"
    assert "Hello from Airflow" in received.get_body(("html",)).get_content()
