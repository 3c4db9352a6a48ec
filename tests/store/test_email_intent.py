"""Emails are recorded before they are sent, on both stores: the intent (with the
Message-ID), then the hand-over to the mail server, then "sent". A re-run resends only an
email whose intent is recorded but not its sending."""

from __future__ import annotations

from typing import Any

import pytest

from engagements.config import load_config
from engagements.messages.emails import EmailKind
from engagements.onboarding import register, send_once
from engagements.settings import Settings
from engagements.store.base import EngagementStore, StoreUnavailable
from tests.conftest import EXAMPLE

KEY = "email:welcome"


class FailingStore:
    """The store, except that the given method raises the given error once."""

    def __init__(self, store: EngagementStore, method: str, error: Exception) -> None:
        self.store, self.method, self.error = store, method, error

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.store, name)
        if name != self.method or self.error is None:
            return real

        def fail(*args: Any, **kwargs: Any) -> Any:
            error, self.error = self.error, None
            raise error

        return fail


@pytest.fixture
def config():
    return load_config(EXAMPLE)


@pytest.fixture
def registered(store, config) -> EngagementStore:
    register(store, config, run_id="r", run_state=lambda _: None)
    return store


def send(store, config, outbox: list) -> Any:
    return send_once(store, config, Settings(), EmailKind.WELCOME, outbox.append)


def test_the_intent_is_recorded_before_the_message_leaves(registered, config):
    seen_at_delivery = []

    def deliver(message):
        seen_at_delivery.append(registered.get_action("openscience", KEY))

    sent = send_once(registered, config, Settings(), EmailKind.WELCOME, deliver)

    (intent,) = seen_at_delivery
    assert intent is not None
    assert intent.detail["state"] == "sending"
    assert intent.detail["message_id"] == sent.message_id
    after = registered.get_action("openscience", KEY)
    assert after.detail["state"] == "sent"
    assert after.detail["sent_at"]


def test_no_intent_recorded_means_nothing_sent(registered, config):
    store = FailingStore(registered, "record_action", StoreUnavailable("Airtable Actions: 503"))
    outbox: list = []
    with pytest.raises(StoreUnavailable):
        send(store, config, outbox)
    assert outbox == []

    assert send(store, config, outbox) is not None
    assert len(outbox) == 1


def test_a_stop_between_sending_and_marking_resends_once_with_the_same_message_id(
    registered, config
):
    store = FailingStore(registered, "update_action", StoreUnavailable("Airtable Actions: 503"))
    outbox: list = []
    # The intent is written with record_action; the first update_action is the "sent" mark.
    with pytest.raises(StoreUnavailable):
        send(store, config, outbox)
    assert len(outbox) == 1
    intent = registered.get_action("openscience", KEY)
    assert intent.detail["state"] == "sending"
    assert intent.detail["message_id"] == outbox[0]["Message-ID"]

    assert send(store, config, outbox) is not None
    assert send(store, config, outbox) is None
    assert len(outbox) == 2
    assert outbox[0]["Message-ID"] == outbox[1]["Message-ID"]
    assert registered.get_action("openscience", KEY).detail["state"] == "sent"


def test_an_email_recorded_before_states_existed_counts_as_sent(registered, config):
    registered.record_action("openscience", KEY, "email", {"message_id": "<old@x>"})
    outbox: list = []
    assert send(registered, config, outbox) is None
    assert outbox == []
