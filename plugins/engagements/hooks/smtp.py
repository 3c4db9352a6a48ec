"""Sending our own MIME messages through the smtp provider's connection handling."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.sdk.exceptions import AirflowException


class EmailDeliveryError(RuntimeError):
    """The SMTP server could not take the message; it was not sent."""


class EngagementSmtpHook(SmtpHook):
    """``SmtpHook`` that sends a ready multipart message (text and HTML parts, our Message-ID).

    The provider's ``send_email_smtp`` builds an HTML-only message; our emails carry a plain
    text twin and a deterministic Message-ID, so we hand the built message to the same client.
    """

    def send_message(self, message: EmailMessage) -> None:
        recipients = [
            a.strip()
            for header in ("To", "Cc", "Bcc")
            for a in str(message.get(header, "")).split(",")
            if a.strip()
        ]
        conn = self.get_connection(self.smtp_conn_id)
        where = f"SMTP server {conn.host}:{conn.port} (connection {self.smtp_conn_id!r})"
        try:
            with self as hook:
                hook._smtp_client.send_message(message, to_addrs=recipients)
        except (OSError, smtplib.SMTPException, AirflowException) as exc:
            raise EmailDeliveryError(
                f"{where}: {type(exc).__name__}: {exc}; email {message['Subject']!r} to "
                f"{', '.join(recipients)} was NOT sent"
            ) from exc
