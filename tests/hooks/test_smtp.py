"""Email delivery faults at the SMTP boundary: refused, timed out, and delivered."""

from __future__ import annotations

import json
import socket
import threading
from email.message import EmailMessage

import pytest

from engagements.hooks.smtp import EmailDeliveryError, EngagementSmtpHook
from engagements.outbox import OutboxServer


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "engagements@2i2c.org"
    msg["To"] = "ada@openscience.example.org"
    msg["Cc"] = "grace@openscience.example.org"
    msg["Subject"] = "Welcome"
    msg["Message-ID"] = "<welcome.openscience.abc@engagements.2i2c.org>"
    msg.set_content("hello")
    msg.add_alternative("<p>hello</p>", subtype="html")
    return msg


def use_smtp(monkeypatch, port: int, **extra) -> None:
    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "login": "mailer",
        "password": "s3cret-smtp-password",
        "extra": {
            "disable_tls": True,
            "disable_ssl": True,
            "timeout": 2,
            "retry_limit": 0,
            **extra,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_delivers_both_parts_to_to_and_cc(monkeypatch, tmp_path):
    with OutboxServer(tmp_path) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_DEFAULT",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 2},
                }
            ),
        )
        EngagementSmtpHook().send_message(message())
        (received,) = server.messages()
    assert received["Message-ID"] == "<welcome.openscience.abc@engagements.2i2c.org>"
    assert received.get_body(("plain",)).get_content().strip() == "hello"
    assert received["Cc"] == "grace@openscience.example.org"


def test_connection_refused_names_the_server_and_what_was_not_sent(monkeypatch, caplog):
    use_smtp(monkeypatch, free_port())
    with pytest.raises(EmailDeliveryError) as info:
        EngagementSmtpHook().send_message(message())
    text = str(info.value)
    assert "127.0.0.1" in text
    assert "NOT sent" in text
    assert "Welcome" in text
    assert "s3cret-smtp-password" not in text + caplog.text


def test_a_server_that_never_answers_times_out(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        use_smtp(monkeypatch, listener.getsockname()[1])
        with pytest.raises(EmailDeliveryError, match="NOT sent"):
            EngagementSmtpHook().send_message(message())
    finally:
        for conn, _ in accepted:
            conn.close()
        listener.close()
