"""The portfolio through Airflow's real api-server app: who may look, who may record, what a
cross-site page cannot do, and that user input never becomes markup."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from markupsafe import escape

from engagements.billing import CostSource, Month, MonthlyCost
from engagements.checkin import Quarter, record_support_hours
from engagements.config import parse_config
from engagements.costs import record_month_costs
from engagements.onboarding import register
from engagements.store.base import EngagementStatus
from engagements.web.access import csrf_token

from .conftest import form_token

PAGE = "/engagements/"
COMMUNITY = "/engagements/communities/openscience"
API = "/engagements/api/engagements"
FIRST = "rollout_coordinator_identified"
RECORD = f"{COMMUNITY}/milestones/{FIRST}"


def add(store, example_dict, community_id="openscience", **changes):
    data = copy.deepcopy(example_dict)
    data["community_id"] = community_id
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    register(store, parse_config(data), run_id=f"run-{community_id}", run_state=lambda _: None)
    return data


@pytest.fixture
def example(web_store, example_dict):
    add(web_store, example_dict)
    return web_store


# --- who may look ----------------------------------------------------------------------------


def test_anonymous_page_visit_goes_to_airflows_login(anonymous, example) -> None:
    for path in (PAGE, COMMUNITY):
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303
        location = urlsplit(response.headers["location"])
        assert location.path == "/auth/login"
        assert parse_qs(location.query)["next"] == [f"http://testserver{path}"]


def test_anonymous_api_calls_get_401_and_record_nothing(anonymous, example) -> None:
    assert anonymous.get(API).status_code == 401
    assert anonymous.get(f"{API}/openscience").status_code == 401
    response = anonymous.post(f"{API}/openscience/milestones/{FIRST}", json={"note": "x"})
    assert response.status_code == 401
    response = anonymous.post(RECORD, data={"note": "x"}, follow_redirects=False)
    assert response.status_code == 303  # to the login page
    assert not example.get_milestone("openscience", FIRST).done


def test_a_forged_token_is_refused(anonymous, example) -> None:
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJhZG1pbiJ9.x"}
    assert anonymous.get(API, headers=forged).status_code == 403
    anonymous.cookies.set("_token", "not-a-token")
    response = anonymous.get(PAGE, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/auth/login")


def test_a_user_without_read_access_to_the_dags_is_refused(browser, script, example) -> None:
    page = browser("nobody").get(PAGE)
    assert page.status_code == 403
    assert "read access to the lifecycle DAGs" in page.text
    assert script("nobody").get(API).status_code == 403


def test_viewer_sees_everything_and_cannot_record(browser, script, example) -> None:
    client = browser("viewer")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Open Science Collective" in page.text
    assert "Rollout coordinator identified within 2i2c" in page.text
    assert "Record done" not in page.text
    community = client.get(COMMUNITY)
    assert community.status_code == 200
    assert "Record done" not in community.text
    # A viewer's page has no form; even with the token it would hold, the post is refused.
    session = SimpleNamespace(cookies={"_token": client.cookies["_token"]})
    token = csrf_token(session, SimpleAuthManagerUser(username="viewer", role="viewer"))
    refused = client.post(RECORD, data={"note": "x", "csrf_token": token})
    assert refused.status_code == 403
    assert "edit the DAG that waits on it" in refused.text
    refused = script("viewer").post(f"{API}/openscience/milestones/{FIRST}", json={"note": "x"})
    assert refused.status_code == 403
    assert "edit the DAG" in refused.json()["detail"]
    assert not example.get_milestone("openscience", FIRST).done


# --- recording ---------------------------------------------------------------------------


def test_editor_records_from_the_page_with_their_airflow_name(browser, example) -> None:
    client = browser("editor")
    page = client.get(COMMUNITY)
    assert page.status_code == 200
    assert f'action="{RECORD}"' in page.text
    response = client.post(
        RECORD,
        data={"note": "  Jo Engineer  ", "csrf_token": form_token(page.text), "back": "community"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{COMMUNITY}?recorded={FIRST}"
    record = example.get_milestone("openscience", FIRST)
    assert record.done_by == "editor (engagements portfolio)"
    assert record.note == "Jo Engineer"
    shown = client.get(response.headers["location"])
    assert "recorded done by editor (engagements portfolio)" in shown.text


def test_recording_from_the_portfolio_returns_to_it(browser, example) -> None:
    client = browser("admin")
    page = client.get(PAGE)
    response = client.post(
        RECORD,
        data={"note": "", "csrf_token": form_token(page.text), "back": "portfolio"},
        follow_redirects=False,
    )
    assert response.headers["location"] == f"{PAGE}?recorded=openscience/{FIRST}"
    after = client.get(response.headers["location"])
    assert "Rollout coordinator identified within 2i2c recorded" in after.text
    record = example.get_milestone("openscience", FIRST)
    assert (record.done_by, record.note) == ("admin (engagements portfolio)", None)
    next_cell = after.text.split('<td class="next">', 1)[1].split("</td>", 1)[0]
    assert "Initial technical meeting scheduled" in next_cell
    # A link claiming a recording that did not happen shows no notice.
    crafted = client.get(PAGE, params={"recorded": "openscience/technical_meeting_scheduled"})
    assert 'class="notice"' not in crafted.text


def test_recording_twice_keeps_the_first_as_the_cli_does(script, example, run) -> None:
    client = script("editor")
    first = client.post(f"{API}/openscience/milestones/{FIRST}", json={"note": "first"})
    assert first.status_code == 200, first.text
    assert first.json()["already_recorded"] is False
    assert first.json()["done_by"] == "editor (engagements portfolio)"
    again = script("admin").post(f"{API}/openscience/milestones/{FIRST}", json={"note": "again"})
    assert again.json()["already_recorded"] is True
    assert (again.json()["done_by"], again.json()["note"]) == (
        "editor (engagements portfolio)",
        "first",
    )


def test_unknown_community_or_milestone_is_404_and_records_nothing(script, example) -> None:
    client = script("admin")
    assert client.post(f"{API}/nowhere/milestones/{FIRST}", json={}).status_code == 404
    assert client.post(f"{API}/openscience/milestones/made_up", json={}).status_code == 404
    assert client.get(f"{API}/nowhere").status_code == 404
    assert example.get_milestone("nowhere", FIRST) is None
    assert example.get_milestone("openscience", "made_up") is None


def test_a_note_too_long_is_refused(script, example) -> None:
    response = script("admin").post(
        f"{API}/openscience/milestones/{FIRST}", json={"note": "x" * 1001}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "note: at most 1000 characters"}
    assert not example.get_milestone("openscience", FIRST).done


# --- cross-site requests -------------------------------------------------------------------


def test_a_cross_site_form_post_is_refused(browser, example) -> None:
    client = browser("admin")
    token = form_token(client.get(COMMUNITY).text)
    attempts = [
        ({"note": "x"}, {}),  # no token: what a forged form sends
        ({"note": "x", "csrf_token": "f" * 64}, {}),
        ({"note": "x", "csrf_token": token}, {"Origin": "https://evil.example"}),
        ({"note": "x", "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for data, headers in attempts:
        response = client.post(RECORD, data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 403, (data, headers)
    # Another user's (or another session's) token does not fit this session.
    other = form_token(browser("editor").get(COMMUNITY).text)
    assert client.post(RECORD, data={"csrf_token": other}).status_code == 403
    # The JSON endpoint signed in by the cookie alone needs the token too.
    assert client.post(f"{API}/openscience/milestones/{FIRST}", json={}).status_code == 403
    assert not example.get_milestone("openscience", FIRST).done
    # The same origin with the page's token is accepted.
    ok = client.post(
        RECORD,
        data={"csrf_token": token},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert example.get_milestone("openscience", FIRST).done
    # So is a JSON post on the session that sends the page's token in its header.
    second = f"{API}/openscience/milestones/technical_meeting_scheduled"
    assert client.post(second, json={}, headers={"X-CSRF-Token": token}).status_code == 200
    assert example.get_milestone("openscience", "technical_meeting_scheduled").done


# --- what the pages show -----------------------------------------------------------------


def test_user_input_is_escaped(browser, web_store, example_dict) -> None:
    add(web_store, example_dict, name="<script>alert('name')</script> Lab")
    web_store.record_milestone(
        "openscience", FIRST, by="<b>bold</b>", note='<img src=x onerror="alert(1)">'
    )
    web_store.record_action(
        "openscience",
        "follow-up:evil",
        "follow_up_issue",
        {"title": "<script>alert('issue')</script>", "url": "javascript:alert(1)"},
    )
    client = browser("admin")
    for path in (PAGE, COMMUNITY):
        page = client.get(path)
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert 'href="javascript:' not in page.text
        assert "&lt;script&gt;alert(" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
    community = client.get(COMMUNITY).text
    assert str(escape('<img src=x onerror="alert(1)">')) in community
    assert "&lt;b&gt;bold&lt;/b&gt;" in community
    data = client.get(f"{API}/openscience").json()
    assert data["row"]["name"] == "<script>alert('name')</script> Lab"


def test_portfolio_is_sorted_by_urgency_and_filters(script, web_store, example_dict) -> None:
    today = dt.datetime.now(dt.UTC).date()
    add(
        web_store,
        example_dict,
        "late",
        name="Late Lab",
        contract__signed_on=today - dt.timedelta(days=30),
    )
    add(web_store, example_dict, "soon", name="Soon Lab", contract__signed_on=today)
    add(
        web_store,
        example_dict,
        "later",
        name="Later Lab",
        contract__signed_on=today + dt.timedelta(days=5),
    )
    add(web_store, example_dict, "idle", name="Idle Lab", contract__signed_on=today)
    for m in web_store.list_milestones("idle"):
        web_store.record_milestone("idle", m.milestone, by="t")
    web_store.update_engagement("idle", status=EngagementStatus.ACTIVE)
    web_store.update_engagement(
        "later", decisions={"cloud.provider": "gcp", "cloud.region": "us-central1"}
    )
    client = script("viewer")
    rows = client.get(API).json()["engagements"]
    assert [r["community_id"] for r in rows] == ["late", "soon", "later", "idle"]
    assert rows[0]["overdue"]
    assert not rows[1]["overdue"]
    assert rows[2]["provider"] == "gcp"
    assert rows[3]["next_milestone"] is None

    def ids(**query) -> list[str]:
        return [r["community_id"] for r in client.get(API, params=query).json()["engagements"]]

    assert ids(status="Active") == ["idle"]
    assert ids(provider="gcp") == ["later"]
    assert ids(q="soon lab") == ["soon"]
    assert ids(q="IDLE") == ["idle"]
    assert ids(q="late") == ["late", "later"]
    assert ids(q="nothing like it") == []
    page = script("viewer").get(PAGE, params={"provider": "gcp"})
    assert "Later Lab" in page.text
    assert "Soon Lab" not in page.text


def test_community_page_shows_costs_support_log_and_documents(
    browser, script, example, tmp_path
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    last = Month.of(today).previous()
    costs = [
        MonthlyCost(last.previous().previous(), Decimal("1000.00"), "USD", CostSource.AWS),
        MonthlyCost(last.previous(), Decimal("1100.00"), "USD", CostSource.AWS),
        MonthlyCost(last, Decimal("1500.00"), "USD", CostSource.AWS),
    ]
    record_month_costs(example, "openscience", costs, account="123456789012")
    record_support_hours(example, "openscience", Decimal("2.5"), note="image", by="jo", on=today)
    example.record_action(
        "openscience",
        "email:welcome",
        "email",
        {"subject": "Welcome to 2i2c", "to": ["ada@openscience.example.org"]},
    )
    example.record_action(
        "openscience",
        "infra-pr",
        "pull_request",
        {"title": "Deploy Open Science", "url_or_path": "https://github.com/o/r/pull/7"},
    )
    folder = tmp_path / "artifacts" / "openscience"
    folder.mkdir(parents=True)
    (folder / "rollout-deck-v1.md").write_text("# Deck\n")
    example.record_action(
        "openscience", "deck:v1", "document", {"markdown": str(folder / "rollout-deck-v1.md")}
    )
    client = browser("viewer")
    page = client.get(COMMUNITY).text
    assert 'class="bar-cost alert"' in page  # 1500 is more than 20% above 1100
    assert page.count('class="limit"') >= 2
    assert "2.5 h of 4 h" in page
    assert "Email “Welcome to 2i2c” to ada@openscience.example.org" in page
    assert 'href="https://github.com/o/r/pull/7"' in page
    assert "rollout-deck-v1.md" in page
    download = client.get(f"{COMMUNITY}/documents/rollout-deck-v1.md")
    assert download.status_code == 200
    assert download.text == "# Deck\n"
    assert download.headers["content-disposition"].startswith("attachment")
    for name in ("..%2F..%2Fengagements.sqlite", ".hidden", "missing.md"):
        assert client.get(f"{COMMUNITY}/documents/{name}").status_code == 404
    one = script("viewer").get(f"{API}/openscience").json()
    assert one["support"][0] == {
        "quarter": str(Quarter.of(today)),
        "used": "2.5",
        "allowance": "4",
    }
    assert [c["amount"] for c in one["costs"]] == ["1000.00", "1100.00", "1500.00"]
    assert one["documents"] == [{"name": "rollout-deck-v1.md", "size": 7, "label": "deck:v1"}]
    assert one["milestones"][0]["dag_id"] == "engagement_onboarding"
    assert {e["link"] for e in one["log"]} >= {"https://github.com/o/r/pull/7"}
    assert one["row"]["community_id"] == "openscience"
    row = script("viewer").get(API).json()["engagements"][0]
    assert row["cost"]["verdict"] == "alert"
    assert row["cost"]["amount"] == "1500.00"
    assert row["cost"]["change_pct"] == "36.4"


def test_open_upgrades_come_from_upgrade_milestones(script, example) -> None:
    example.plan_milestone("openscience", "upgraded_openscience_1.32", dt.date(2027, 1, 15))
    example.plan_milestone("openscience", "upgraded_openscience_chart-4.3.3", None)
    example.plan_milestone("openscience", "upgraded_openscience_1.31", None)
    example.record_milestone("openscience", "upgraded_openscience_1.31", by="t")
    row = script("viewer").get(API).json()["engagements"][0]
    assert row["open_upgrades"] == [
        {"cluster": "openscience", "to": "1.32", "due": "2027-01-15"},
        {"cluster": "openscience", "to": "chart-4.3.3", "due": None},
    ]
    # Recording one needs edit access to the upkeep DAG; an editor has it.
    done = script("editor").post(
        f"{API}/openscience/milestones/upgraded_openscience_1.32", json={"note": "upgraded"}
    )
    assert done.status_code == 200
    assert done.json()["title"] == "Cluster openscience upgraded to Kubernetes 1.32"
