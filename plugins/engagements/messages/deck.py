"""The community research and rollout slide deck, as a .pptx and its Markdown twin.

The deck states what 2i2c believes matters to the community, as hypotheses to validate at the
rollout meeting, and stays the team's source of truth about the community afterwards
(version 2 adds what was learned). :func:`deck_outline` is the only place that decides what
the slides say; the PowerPoint writer and ``include/templates/deck/deck.md.j2`` both render
that outline, so the two files cannot drift apart. Pure functions: no Airflow, no network.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pptx import Presentation
from pptx.util import Length, Pt

from engagements.config import AUTH_LABELS, IMAGE_LABELS, Billing, CommunityConfig
from engagements.messages.emails import template_environment
from engagements.settings import Settings

if TYPE_CHECKING:
    from pptx.text.text import _Paragraph

QUESTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "future",
        "The future you want",
        "What do you want to achieve by working with 2i2c? What future do you wish to materialize?",
    ),
    (
        "community",
        "Your community: segments and personas",
        "Can you describe this research community more? Is it segmented? Are there "
        "archetypes or personas?",
    ),
    (
        "mission",
        "Your mission and open infrastructure",
        "At a high level, what is your community trying to achieve, and how will open "
        "data/compute infrastructure help advance your mission?",
    ),
    (
        "data",
        "Your data and where it is",
        "Can you describe the data? Collaborating open science communities orbit around "
        "their data. Where is it?",
    ),
)
"""(answer key, slide title, question) for the four questions BD asks in writing."""

LEARNED_KEYS = ("notes", "requirements", "workflows", "responded_by")
"""What the rollout-outcome form records; ``responded_by`` becomes a speaker note."""
AUTHOR = "2i2c Product and Services Team"


@dataclass(frozen=True)
class Bullet:
    text: str
    level: int = 0


@dataclass(frozen=True)
class Slide:
    title: str
    bullets: tuple[Bullet, ...]
    notes: str = ""


@dataclass(frozen=True)
class DeckOutline:
    title: str
    subtitle: str
    slides: tuple[Slide, ...]

    @property
    def titles(self) -> list[str]:
        """Every slide title in order, the title slide first."""
        return [self.title, *(s.title for s in self.slides)]


@dataclass(frozen=True)
class DeckFiles:
    pptx: Path
    markdown: Path


def deck_outline(
    config: CommunityConfig,
    settings: Settings,
    *,
    version: int,
    learned: Mapping[str, Any] | None = None,
    decisions: Mapping[str, Any] | None = None,
    deployment: Any = None,
) -> DeckOutline:
    """What the deck says, as data; ``decisions`` (dotted config keys) override the config.

    ``deployment`` is what the store shows deployed (an
    :class:`engagements.deployment.DeploymentStatus`): with it, each platform component says
    whether it is deployed and on what evidence; without it (before the deployment) the
    components are listed as planned, claiming nothing.
    """
    if version < 1:
        raise ValueError(f"deck version must be 1 or more, got {version}")
    if decisions:
        config = config.with_decisions(dict(decisions))
    notes, requirements, workflows = _learned(learned)
    recorded_by = (learned or {}).get("responded_by") or ""
    stage = (
        "updated with what we learned at the rollout meeting"
        if learned is not None
        else "hypotheses to validate at the rollout meeting"
    )
    slides = [
        *_question_slides(config),
        _people(config),
        _web_and_github(config),
        _workflows(workflows),
        _requirements(config),
        _components(config, settings, deployment),
    ]
    if learned is not None:
        slides.append(_what_we_learned(notes, requirements, recorded_by))
    slides.append(_remaining_actions(config, requirements if learned is not None else None))
    return DeckOutline(
        title=f"{config.name}: community research and rollout",
        subtitle=f"2i2c Advanced Tier · {config.community_id} · version {version}: {stage}",
        slides=tuple(slides),
    )


def build_deck(
    config: CommunityConfig,
    settings: Settings,
    *,
    out_dir: Path,
    version: int,
    learned: Mapping[str, Any] | None = None,
    decisions: Mapping[str, Any] | None = None,
    deployment: Any = None,
) -> DeckFiles:
    """Write ``rollout-deck-v{version}.pptx`` and ``.md`` to ``out_dir``; same input, same bytes."""
    outline = deck_outline(
        config,
        settings,
        version=version,
        learned=learned,
        decisions=decisions,
        deployment=deployment,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = DeckFiles(
        pptx=out_dir / f"rollout-deck-v{version}.pptx",
        markdown=out_dir / f"rollout-deck-v{version}.md",
    )
    stamp = dt.datetime.combine(config.contract.signed_on, dt.time())
    _write_atomically(files.pptx, _pptx_bytes(outline, config, version=version, stamp=stamp))
    markdown = template_environment().get_template("deck/deck.md.j2").render(deck=outline)
    _write_atomically(files.markdown, markdown.encode("utf-8"))
    return files


def _clean(text: str) -> str:
    """One line of text: answers typed in YAML may carry newlines that break a bullet."""
    return " ".join(text.split())


def _b(text: str, level: int = 0) -> Bullet:
    return Bullet(_clean(text), level)


def _learned(learned: Mapping[str, Any] | None) -> tuple[str, list[str], list[str]]:
    if learned is None:
        return "", [], []
    unknown = sorted(set(learned) - set(LEARNED_KEYS))
    if unknown:
        raise ValueError(
            f"learned takes {', '.join(LEARNED_KEYS)}; unknown key(s): {', '.join(unknown)}"
        )
    notes = learned.get("notes") or ""
    lists = [learned.get(k) or [] for k in ("requirements", "workflows")]
    if not isinstance(notes, str) or any(
        isinstance(v, str) or not all(isinstance(i, str) for i in v) for v in lists
    ):
        raise ValueError("learned: notes must be a string, requirements and workflows lists of str")
    requirements, workflows = ([_clean(i) for i in v if i.strip()] for v in lists)
    return notes, requirements, workflows


def _question_slides(config: CommunityConfig) -> list[Slide]:
    answers = config.answers.model_dump()
    slides = []
    for index, (key, title, question) in enumerate(QUESTIONS, start=1):
        answer = (answers[key] or "").strip()
        said = (
            f"Written answer: {answer}"
            if answer
            else "No written answer on record: to ask at the rollout meeting."
        )
        slides.append(
            Slide(
                f"Hypothesis {index}: {title}",
                (_b(question), _b(said, 1)),
                notes="From the community's written answer; validate it at the rollout meeting.",
            )
        )
    return slides


def _people(config: CommunityConfig) -> Slide:
    bullets = [_b("Community Representatives (hub administrators):")]
    for rep in config.representatives:
        lead = " (technical lead, primary contact)" if rep.technical_lead else ""
        bullets.append(_b(f"{rep.name}, {rep.email}, GitHub @{rep.github}{lead}", 1))
    invoice = config.invoice_contact
    bullets.append(
        _b(f"Invoicing contact (CS&S): {invoice.name}, {invoice.email}")
        if invoice
        else _b("Invoicing contact (CS&S): not on record yet")
    )
    return Slide("People involved", tuple(bullets))


def _web_and_github(config: CommunityConfig) -> Slide:
    bullets = [_b(f"Website: {config.website or 'none on record'}")]
    if config.github_org:
        bullets.append(_b(f"GitHub organization: https://github.com/{config.github_org}"))
    else:
        bullets.append(_b("GitHub organization: none on record yet"))
    teams = config.hubs.community.allowed_teams
    bullets.append(_b("Teams allowed on the community hub:"))
    bullets.extend(_b(team, 1) for team in teams)
    if not teams:
        bullets.append(_b("none yet: which teams should have access?", 1))
    return Slide("Website and GitHub", tuple(bullets))


def _workflows(workflows: list[str]) -> Slide:
    if workflows:
        return Slide("Sample workflows and projects", tuple(_b(w) for w in workflows))
    return Slide(
        "Sample workflows and projects",
        (
            _b("To ask in the rollout meeting:"),
            _b("Which workflows or projects should the hubs support first?", 1),
            _b("Which notebooks, repositories or data sets would make a good first demo?", 1),
        ),
    )


def _requirements(config: CommunityConfig) -> Slide:
    cloud, hubs, branding = config.cloud, config.hubs, config.branding
    where = cloud.region + (f" (zone {cloud.zone})" if cloud.zone else "")
    payer = (
        "the community's own billing account"
        if cloud.billing is Billing.COMMUNITY
        else "2i2c, passed on to the community monthly"
    )
    workshop = f"via {AUTH_LABELS[hubs.workshop.auth]}" if hubs.workshop.enabled else "not deployed"
    binder = (
        ("authenticated" if hubs.binder.authenticated else "open")
        if hubs.binder.enabled
        else "not deployed"
    )
    funded = "none"
    if branding.funded_by:
        funded = branding.funded_by.name + (
            f" ({branding.funded_by.url})" if branding.funded_by.url else ""
        )
    bullets = (
        _b(f"Cloud provider and region: {cloud.provider.value.upper()}, {where}"),
        _b(f"Cloud bill paid by: {payer}"),
        _b(f"GPU: {'yes' if cloud.gpu else 'no'}"),
        _b(
            f"Authentication: community hub via {AUTH_LABELS[hubs.community.auth]}; "
            f"workshop hub {workshop}; BinderHub {binder}"
        ),
        _b(
            f"GitHub organization and teams: {config.github_org or 'none yet'}; "
            f"{', '.join(hubs.community.allowed_teams) or 'no teams yet'}"
        ),
        _b(f"Dask gateway: {'yes' if hubs.community.dask_gateway else 'no'}"),
        _b(f"Admin users: {', '.join(config.admin_users)}"),
        _b(f"Splash image / logo: {branding.logo_url or '2i2c default logo'}"),
        _b(f"Community website: {config.website or 'none'}"),
        _b(f"Funded by: {funded}"),
    )
    return Slide("Technical requirements from the technical meeting", bullets)


def _components(config: CommunityConfig, settings: Settings, deployment: Any) -> Slide:
    """The platform's parts: planned (no deployment known yet), or each with its status."""
    notes = f"Image guide: {settings.images_guide_url}. Support: {settings.support_email}."
    cloud = config.cloud
    cluster = (
        f"Kubernetes cluster {config.cluster_name} on {cloud.provider.value.upper()} "
        f"{cloud.region}, with staging and production hubs"
    )
    images = [_b(IMAGE_LABELS[image], 1) for image in config.images.offered]
    if config.images.bring_your_own:
        images.append(_b("Bring your own image", 1))
    if config.images.dynamic_image_building:
        images.append(_b("Build your own image (dynamic image building)", 1))
    if deployment is None:
        names = {"community": "Community hub", "workshop": "Workshop hub", "binder": "BinderHub"}
        org = f"github.com/{config.github_org}" if config.github_org else "the community's GitHub"
        bullets = [
            _b(cluster),
            *(_b(f"{names[hub]}: {url}") for hub, url in config.hub_urls.items()),
            _b(f"Grafana (historical usage): {config.grafana_url}"),
            _b(f"GitHub organization and sub-teams: {org}"),
            _b("JupyterBook companion site"),
            _b("Sample image environment configuration repository"),
            _b("Sample binder project repository"),
            _b("Quay container registry account"),
            _b("Images offered (jupyterhub-fancy-profiles):"),
            *images,
        ]
        return Slide("Platform components to deploy", tuple(bullets), notes=notes)

    def status(part: Any) -> str:
        return f"deployed ({part.evidence})" if part.done else f"not yet ({part.evidence})"

    cluster_part = deployment.cluster
    bullets = [
        _b(f"{cluster}: {status(cluster_part)}"),
        *(_b(f"{hub.name}: {hub.url}: {status(hub)}") for hub in deployment.hubs),
        _b(f"Grafana (historical usage): {config.grafana_url}: {status(cluster_part)}"),
        *(
            _b(f"{part.name}{': ' + part.url if part.url else ''}: {status(part)}")
            for part in (*deployment.github, deployment.quay)
        ),
        _b(
            "Images offered (jupyterhub-fancy-profiles): "
            + ("deployed with the hubs" if deployment.hubs_deployed else "not yet")
        ),
        *images,
    ]
    return Slide("Platform components: deployed, and still to do", tuple(bullets), notes=notes)


def _what_we_learned(notes: str, requirements: list[str], recorded_by: str) -> Slide:
    paragraphs = [p for p in notes.split("\n\n") if p.strip()]
    bullets = [_b(p) for p in paragraphs] or [_b("No notes recorded.")]
    if requirements:
        bullets.append(_b("Additional configuration requested:"))
        bullets.extend(_b(r, 1) for r in requirements)
    provenance = f"Recorded by {recorded_by}." if recorded_by else ""
    return Slide("What we learned at the rollout meeting", tuple(bullets), notes=provenance)


def _remaining_actions(config: CommunityConfig, requirements: list[str] | None) -> Slide:
    """Open questions before the meeting; the requested configuration after it."""
    if requirements is None:
        domain = (
            f"Landing page for {config.domain}"
            if config.domain
            else f"Domain name and landing page: keep {config.base_domain} or use your own?"
        )
        bullets = [
            _b("Image management and creation: which images beyond the ones offered?"),
            _b(domain),
            _b("Storage options, including bucket storage for data"),
            _b("Validate the initial profiles (images, RAM per user)"),
        ]
    else:
        bullets = [_b(f"Configure: {r}") for r in requirements] or [
            _b("No additional configuration was requested.")
        ]
    titles = {key: title for key, title, _ in QUESTIONS}
    bullets += [_b(f"Written answer still missing: {titles[k]}") for k in config.missing_answers]
    if config.invoice_contact is None:
        bullets.append(_b("Invoicing contact for CS&S"))
    if config.github_org is None:
        bullets.append(_b("GitHub organization for the community and its sub-teams"))
    if config.branding.logo_url is None:
        bullets.append(_b("Splash image / logo: the 2i2c logo unless you send one"))
    if config.branding.funded_by is None:
        bullets.append(_b("Funded-by name and URL for the hub home page, if any"))
    return Slide("Remaining actions needing your guidance", tuple(bullets))


def _font_size(slide: Slide, width: Length, height: Length) -> Pt:
    """The largest size at which the bullets fit the body, estimated from average glyph width.

    python-pptx cannot measure text and viewers' autofit is unreliable, so without this a long
    written answer would run off the slide.
    """
    for size in (20, 18, 16, 14, 12):
        lines = 0
        for bullet in slide.bullets:
            usable = width.pt - 27 * (bullet.level + 1)  # the layout's indent per level
            lines += max(1, math.ceil(len(bullet.text) * size * 0.5 / usable))
        if lines * size * 1.2 + len(slide.bullets) * size * 0.2 <= height.pt:
            return Pt(size)
    return Pt(10)


def _pptx_bytes(
    outline: DeckOutline, config: CommunityConfig, *, version: int, stamp: dt.datetime
) -> bytes:
    presentation = Presentation()
    title_layout, content_layout = presentation.slide_layouts[0], presentation.slide_layouts[1]
    first = presentation.slides.add_slide(title_layout)
    first.shapes.title.text = outline.title
    first.placeholders[1].text = outline.subtitle
    for slide in outline.slides:
        page = presentation.slides.add_slide(content_layout)
        _set_text(page.shapes.title.text_frame.paragraphs[0], slide.title, Pt(30))
        placeholder = page.placeholders[1]
        body = placeholder.text_frame
        body.word_wrap = True
        size = _font_size(slide, placeholder.width, placeholder.height)
        for index, bullet in enumerate(slide.bullets):
            paragraph = body.paragraphs[0] if index == 0 else body.add_paragraph()
            paragraph.level = bullet.level
            _set_text(paragraph, bullet.text, size)
        if slide.notes:
            page.notes_slide.notes_text_frame.text = slide.notes
    props = presentation.core_properties
    props.title = outline.title
    props.subject = f"Advanced Tier rollout deck for {config.community_id}"
    props.author = props.last_modified_by = AUTHOR
    props.keywords = f"2i2c; rollout; {config.community_id}"
    props.revision = version
    props.created = props.modified = stamp
    buffer = io.BytesIO()
    presentation.save(buffer)
    return _normalised_zip(buffer.getvalue(), stamp)


def _set_text(paragraph: _Paragraph, text: str, size: Pt) -> None:
    """Size the run itself: PowerPoint ignores a paragraph's default run size for its runs."""
    run = paragraph.add_run()
    run.text = text
    run.font.size = size


def _normalised_zip(data: bytes, stamp: dt.datetime) -> bytes:
    """Re-pack with fixed entry times: python-pptx stamps each entry with the current time."""
    out = io.BytesIO()
    date_time = stamp.timetuple()[:6]
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=date_time)
            dst.writestr(entry, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers (and a re-run after a crash) never see a half-written file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
