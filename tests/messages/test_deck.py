"""The rollout deck: both files, the twin property, versions, decisions, determinism."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from pptx import Presentation

from engagements.messages.deck import DeckFiles, build_deck, deck_outline

SECTIONS = [
    "Open Science Collective: community research and rollout",
    "Hypothesis 1: The future you want",
    "Hypothesis 2: Your community: segments and personas",
    "Hypothesis 3: Your mission and open infrastructure",
    "Hypothesis 4: Your data and where it is",
    "People involved",
    "Website and GitHub",
    "Sample workflows and projects",
    "Technical requirements from the technical meeting",
    "Platform components to deploy",
    "Remaining actions needing your guidance",
]
LEARNED = {
    "notes": "The summer school is the busiest time.\n\nMost analysts work in R.",
    "requirements": ["Add a GPU profile for the summer school", "Use the domain hub.example.org"],
    "workflows": ["Survey reprocessing notebooks", "Summer school teaching materials"],
}


def pptx_titles(path: Path) -> list[str]:
    return [slide.shapes.title.text for slide in Presentation(path).slides]


def pptx_bullets(path: Path) -> list[tuple[int, str]]:
    """(level, text) of every body paragraph of the content slides."""
    bullets = []
    for slide in list(Presentation(path).slides)[1:]:
        for paragraph in slide.placeholders[1].text_frame.paragraphs:
            bullets.append((paragraph.level, paragraph.text))
    return bullets


def md_titles(path: Path) -> list[str]:
    return re.findall(r"^#{1,2} (.+)$", path.read_text(), re.MULTILINE)


def md_bullets(path: Path) -> list[tuple[int, str]]:
    return [
        (len(indent) // 2, text)
        for indent, text in re.findall(r"^( *)- (.+)$", path.read_text(), re.MULTILINE)
    ]


@pytest.fixture
def v1(config, settings, tmp_path) -> DeckFiles:
    return build_deck(config, settings, out_dir=tmp_path / "deck", version=1)


@pytest.fixture
def v2(config, settings, tmp_path) -> DeckFiles:
    return build_deck(config, settings, out_dir=tmp_path / "deck", version=2, learned=LEARNED)


def test_files_are_written_with_versioned_names(v1, tmp_path):
    assert v1.pptx == tmp_path / "deck" / "rollout-deck-v1.pptx"
    assert v1.markdown == tmp_path / "deck" / "rollout-deck-v1.md"
    assert v1.pptx.stat().st_size > 0
    assert v1.markdown.stat().st_size > 0
    assert sorted(p.name for p in v1.pptx.parent.iterdir()) == [
        "rollout-deck-v1.md",
        "rollout-deck-v1.pptx",
    ]


def test_pptx_has_the_runbook_sections(v1):
    assert pptx_titles(v1.pptx) == SECTIONS


def test_markdown_is_the_twin_of_the_pptx(v1, v2):
    for files in (v1, v2):
        assert md_titles(files.markdown) == pptx_titles(files.pptx)
        assert md_bullets(files.markdown) == pptx_bullets(files.pptx)


def test_outline_is_what_both_files_render(config, settings, v1):
    outline = deck_outline(config, settings, version=1)
    assert outline.titles == pptx_titles(v1.pptx)


def test_answers_are_presented_as_hypotheses(v1, config):
    text = v1.markdown.read_text()
    for answer in config.answers.model_dump().values():
        assert " ".join(answer.split()) in text
    assert "version 1: hypotheses to validate at the rollout meeting" in text


def test_missing_answer_is_a_question_not_a_guess(make_config, settings, tmp_path):
    config = make_config({"answers.data": None})
    files = build_deck(config, settings, out_dir=tmp_path, version=1)
    text = files.markdown.read_text()
    assert "No written answer on record: to ask at the rollout meeting." in text
    assert "Written answer still missing: Your data and where it is" in text


def test_people_website_and_github(v1):
    text = v1.markdown.read_text()
    assert "Ada Lovelace, ada@openscience.example.org, GitHub @adalovelace (technical lead" in text
    assert "Grace Hopper, grace@openscience.example.org, GitHub @ghopper" in text
    assert "Invoicing contact (CS&S): Accounts Payable, ap@openscience.example.org" in text
    assert "Website: https://openscience.example.org" in text
    assert "GitHub organization: https://github.com/openscience-org" in text
    assert "openscience-org:hub-users" in text


def test_v1_workflows_slide_is_a_placeholder(v1):
    bullets = [text for _, text in md_bullets(v1.markdown)]
    assert "To ask in the rollout meeting:" in bullets
    assert "What we learned at the rollout meeting" not in pptx_titles(v1.pptx)


def test_technical_requirements_and_components(v1):
    text = v1.markdown.read_text()
    for fact in (
        "Cloud provider and region: AWS, us-west-2",
        "Cloud bill paid by: the community's own billing account",
        "GPU: no",
        "Authentication: community hub via GitHub; workshop hub via the shared workshop password; BinderHub open",
        "Dask gateway: no",
        "Admin users: adalovelace, ghopper",
        "Splash image / logo: 2i2c default logo",
        "Community website: https://openscience.example.org",
        "Funded by: Sloan Foundation (https://sloan.org)",
        "Community hub: https://openscience.2i2c.cloud",
        "Workshop hub: https://workshop.openscience.2i2c.cloud",
        "BinderHub: https://binder.openscience.2i2c.cloud",
        "Grafana (historical usage): https://grafana.openscience.2i2c.cloud",
        "JupyterBook companion site",
        "Sample image environment configuration repository",
        "Sample binder project repository",
        "Quay container registry account",
        "Jupyter Docker Stacks scipy-notebook",
        "Rocker RStudio (geospatial)",
        "Build your own image (dynamic image building)",
    ):
        assert fact in text, fact


def test_v1_claims_nothing_deployed(v1):
    text = v1.markdown.read_text()
    assert "Platform components to deploy" in text
    assert "deployed (" not in text


def test_v2_says_per_component_what_the_store_shows(store, config, settings, tmp_path):
    """Hubs confirmed by an engineer; Quay only planned (its step skipped): not deployed."""
    from engagements.deployment import deployment_status

    store.record_milestone("openscience", "infrastructure_deployed", by="Eve (engineer)")
    store.record_action("openscience", "quay-image", "container_registry", {"state": "planned"})
    status = deployment_status(store, "openscience", config.hub_urls)
    files = build_deck(config, settings, out_dir=tmp_path, version=2, learned=LEARNED,
                       deployment=status)  # fmt: skip
    text = files.markdown.read_text()
    assert "## Platform components: deployed, and still to do" in text
    assert "Community hub: https://openscience.2i2c.cloud: deployed (confirmed by Eve" in text
    assert "Quay image repository: not yet (planned only)" in text
    assert "GitHub organization teams: not yet (not recorded as done)" in text
    assert "Sample binder project repository: not yet" in text


def test_decisions_override_the_config(config, settings, tmp_path):
    decisions = {
        "cloud.region": "us-east-1",
        "cloud.gpu": True,
        "hubs.community.dask_gateway": True,
    }
    files = build_deck(config, settings, out_dir=tmp_path, version=1, decisions=decisions)
    text = files.markdown.read_text()
    assert "Cloud provider and region: AWS, us-east-1" in text
    assert "GPU: yes" in text
    assert "Dask gateway: yes" in text


def test_v2_adds_what_we_learned(v2):
    titles = pptx_titles(v2.pptx)
    assert titles[-2:] == [
        "What we learned at the rollout meeting",
        "Remaining actions needing your guidance",
    ]
    remaining = Presentation(v2.pptx).slides[-1].placeholders[1].text_frame.text
    for requirement in LEARNED["requirements"]:
        assert f"Configure: {requirement}" in remaining
    text = v2.markdown.read_text()
    assert "The summer school is the busiest time." in text
    assert "Most analysts work in R." in text
    for workflow in LEARNED["workflows"]:
        assert workflow in text
    assert "To ask in the rollout meeting:" not in text
    assert "version 2: updated with what we learned" in text


def test_learned_records_who_responded(config, settings):
    outline = deck_outline(
        config, settings, version=2, learned=LEARNED | {"responded_by": "Rollout Coordinator"}
    )
    learned_slide = next(s for s in outline.slides if s.title.startswith("What we learned"))
    assert learned_slide.notes == "Recorded by Rollout Coordinator."


def test_learned_is_checked(config, settings, tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\): note"):
        build_deck(config, settings, out_dir=tmp_path, version=2, learned={"note": "x"})
    with pytest.raises(ValueError, match="lists of str"):
        build_deck(config, settings, out_dir=tmp_path, version=2, learned={"requirements": "x"})


def test_version_must_be_positive(config, settings, tmp_path):
    with pytest.raises(ValueError, match="version must be 1 or more"):
        build_deck(config, settings, out_dir=tmp_path, version=0)


def test_output_is_deterministic(config, settings, tmp_path):
    first = build_deck(config, settings, out_dir=tmp_path / "a", version=2, learned=LEARNED)
    second = build_deck(config, settings, out_dir=tmp_path / "b", version=2, learned=LEARNED)
    assert first.pptx.read_bytes() == second.pptx.read_bytes()
    assert first.markdown.read_text() == second.markdown.read_text()
    props = Presentation(first.pptx).core_properties
    assert props.created == props.modified == dt.datetime(2026, 11, 20)
    assert props.revision == 2
    assert props.title == SECTIONS[0]


def test_rebuild_replaces_in_place(config, settings, tmp_path):
    build_deck(config, settings, out_dir=tmp_path, version=1)
    files = build_deck(config, settings, out_dir=tmp_path, version=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [files.markdown.name, files.pptx.name]


def test_long_answers_get_a_smaller_font(make_config, settings, tmp_path):
    config = make_config({"answers.future": "A long answer. " * 60})
    files = build_deck(config, settings, out_dir=tmp_path, version=1)
    slide = Presentation(files.pptx).slides[1]
    sizes = {
        run.font.size.pt for p in slide.placeholders[1].text_frame.paragraphs for run in p.runs
    }
    assert max(sizes) < 20


def test_no_secret_looking_values(v2, config):
    slides = Presentation(v2.pptx).slides
    shown = [v2.markdown.read_text()] + [
        shape.text_frame.text for slide in slides for shape in slide.shapes if shape.has_text_frame
    ]
    for text in shown:
        assert config.cloud.account not in text
        assert str(config.contract.hubspot_deal_id) not in text
        assert "48000" not in text
