"""The community config: the one schema of an engagement.

Everything else derives from :class:`CommunityConfig`: the onboarding trigger form's Params
(:func:`engagements.params.params_from_config_schema`), the CLI's ``validate``, the store's
record, the emails and the deck. Errors always carry the key path so that a user can find
what to fix.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

COMMUNITY_ID_PATTERN = r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$"
GITHUB_LOGIN_PATTERN = r"^[A-Za-z0-9](?:-?[A-Za-z0-9])*$"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^[^@\s<>\"',;]+@{_LABEL}(?:\.{_LABEL})+$"
URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
DOMAIN_PATTERN = r"^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
TEAM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}(:[a-z0-9][a-z0-9_.-]*)?$"
GCP_PROJECT_PATTERN = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
AZURE_SUBSCRIPTION_PATTERN = r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
JETSTREAM2_ALLOCATION_PATTERN = r"^(?:TG-)?[A-Z]{3}\d{6}$"

EARLIEST_DATE = dt.date(2000, 1, 1)
"""No engagement date is earlier: an older one is a typo."""
YEARS_AHEAD = 10
"""No engagement date is further ahead of today, and no contract lasts longer."""
MAX_REVENUE_USD = 100_000_000
MAX_MONTHLY_COST_USD = 10_000_000
MAX_JSON_INTEGER = 2**53 - 1
"""The largest integer every JSON reader (the UI's JavaScript too) keeps exactly."""

PROVIDER_DOMAIN = "2i2c.cloud"
ITERATION_EPOCH = dt.date(2026, 1, 5)
"""A Monday on which a two-week team iteration started; iterations repeat every 14 days."""
ITERATION_DAYS = 14


def next_iteration(after: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the first two-week team iteration starting after ``after``."""
    periods = (after - ITERATION_EPOCH).days // ITERATION_DAYS + 1
    start = ITERATION_EPOCH + dt.timedelta(days=periods * ITERATION_DAYS)
    return start, start + dt.timedelta(days=ITERATION_DAYS - 1)


class Tier(StrEnum):
    ADVANCED = "advanced"
    PREMIUM = "premium"
    ESSENTIAL = "essential"


class CloudProvider(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"
    JETSTREAM2 = "jetstream2"


class Billing(StrEnum):
    COMMUNITY = "community"
    PROVIDER = "2i2c"


class HubAuth(StrEnum):
    GITHUB = "github"
    CILOGON = "cilogon"
    GOOGLE = "google"
    SHARED_PASSWORD = "shared-password"


class Image(StrEnum):
    SCIPY = "scipy"
    DATASCIENCE = "datascience"
    PANGEO = "pangeo"
    ROCKER = "rocker"


REGIONS: dict[CloudProvider, tuple[str, ...]] = {
    CloudProvider.AWS: (
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1",
        "eu-west-2", "eu-central-1", "eu-north-1", "ap-south-1", "ap-southeast-1",
        "ap-southeast-2", "ap-northeast-1", "sa-east-1", "af-south-1",
    ),
    CloudProvider.GCP: (
        "us-central1", "us-east1", "us-east4", "us-west1", "us-west2", "northamerica-northeast1",
        "europe-west1", "europe-west2", "europe-west3", "europe-west4", "asia-southeast1",
        "asia-northeast1", "australia-southeast1", "southamerica-east1", "africa-south1",
    ),
    CloudProvider.AZURE: (
        "eastus", "eastus2", "westus2", "westus3", "centralus", "canadacentral", "northeurope",
        "westeurope", "uksouth", "southeastasia", "australiaeast", "brazilsouth",
    ),
    CloudProvider.JETSTREAM2: ("IU", "TACC", "ASU", "Cornell", "UH"),
}  # fmt: skip


def latest_date(today: dt.date | None = None) -> dt.date:
    """The furthest date ahead that any engagement date may be."""
    today = today or dt.datetime.now(dt.UTC).date()
    return today.replace(year=today.year + YEARS_AHEAD, day=min(today.day, 28))


def check_date(value: dt.date) -> dt.date:
    """A date a person meant: not before 2000, not decades ahead (a typo such as 9999-12-31)."""
    if value < EARLIEST_DATE:
        raise ValueError(f"{value} is before {EARLIEST_DATE}")
    if value > latest_date():
        raise ValueError(f"{value} is more than {YEARS_AHEAD} years ahead")
    return value


EngagementDate = Annotated[dt.date, AfterValidator(check_date)]


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """The first terminal control character in ``text`` (U+XXXX), or None.

    Such characters (escape sequences) would rewrite a terminal that prints the text; only
    newlines and tabs are allowed, and only in ``multiline`` text.
    """
    allowed = "\n\t" if multiline else ""
    for char in text:
        if char not in allowed and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"U+{ord(char):04X}"
    return None


def check_text(value: Any, *, multiline: bool = False) -> Any:
    """Refuse control characters in a string (or each string of a tuple)."""
    for text in value if isinstance(value, tuple) else (value,):
        if isinstance(text, str) and (found := control_character(text, multiline=multiline)):
            raise ValueError(f"contains the control character {found}")
    return value


def _no_double_hyphen(value: str) -> str:
    if "--" in value:
        raise ValueError('must not contain "--" (reserved by DNS for punycode)')
    return value


CommunityId = Annotated[
    str,
    Field(
        pattern=COMMUNITY_ID_PATTERN,
        min_length=3,
        max_length=30,
        description="One word (DNS label) used for project, billing, cluster, hub and URL: "
        "lowercase letters, digits and single hyphens, 3-30 characters.",
    ),
    AfterValidator(_no_double_hyphen),
]
Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254, description="Email address.")]
Url = Annotated[str, Field(pattern=URL_PATTERN, max_length=2000, description="http(s) URL.")]
GitHubLogin = Annotated[
    str,
    Field(
        pattern=GITHUB_LOGIN_PATTERN,
        max_length=39,
        description="GitHub login: 1-39 characters, letters, digits and single hyphens.",
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, allow_inf_nan=False
    )
    multiline_text: ClassVar[bool] = False

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        return check_text(value, multiline=cls.multiline_text)


class Representative(_Model):
    """A person authorised to speak for the community; becomes a hub administrator."""

    name: str = Field(min_length=1, max_length=200, description="Full name.")
    email: Email
    github: GitHubLogin
    technical_lead: StrictBool = Field(
        default=False, description="The primary technical contact; exactly one representative."
    )


class Contact(_Model):
    name: str = Field(min_length=1, max_length=200, description="Contact name.")
    email: Email


class Contract(_Model):
    signed_on: EngagementDate = Field(
        description="Day the community signed; day 0 of every deadline."
    )
    start: EngagementDate = Field(description="First day of the engagement.")
    end: EngagementDate = Field(description="Last day of the engagement; after the start.")
    revenue_usd: float = Field(
        gt=0,
        le=MAX_REVENUE_USD,
        strict=True,
        description="Expected revenue, estimated cloud costs included.",
    )
    cloud_cost_estimate_usd_month: float | None = Field(
        default=None,
        ge=0,
        le=MAX_MONTHLY_COST_USD,
        strict=True,
        description="Estimated monthly cloud cost (USD).",
    )
    expected_maus: int = Field(
        gt=0, le=10_000_000, strict=True, description="Expected monthly active users."
    )
    hubspot_deal_id: int | None = Field(
        default=None,
        gt=0,
        le=MAX_JSON_INTEGER,
        strict=True,
        description="HubSpot deal id; the cluster config needs it to deploy.",
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> Contract:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.signed_on > self.end:
            raise ValueError(f"signed_on ({self.signed_on}) is after the end ({self.end})")
        if self.end > self.start.replace(year=self.start.year + YEARS_AHEAD, day=1):
            raise ValueError(f"a contract lasts at most {YEARS_AHEAD} years")
        return self


class Answers(_Model):
    """The four written answers BD collects before sign-off; empty means missing."""

    multiline_text: ClassVar[bool] = True

    future: str | None = Field(default=None, description="The future the community wants.")
    community: str | None = Field(default=None, description="Segments, archetypes, personas.")
    mission: str | None = Field(
        default=None, description="What open data/compute infrastructure advances."
    )
    data: str | None = Field(default=None, description="Where the community's data is.")


class Cloud(_Model):
    provider: CloudProvider = Field(default=CloudProvider.AWS, description="Cloud provider.")
    region: str = Field(min_length=1, description="Region of the cluster (the provider's own).")
    zone: str | None = Field(default=None, description="GCP zone, e.g. us-central1-b.")
    account: str | None = Field(
        default=None,
        description="AWS account id / GCP project id / Azure subscription / Jetstream2 allocation.",
    )
    tenant_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="Azure only: the tenant (directory) id of the subscription, which the "
        "cluster's terraform needs (az account show -s <subscription> --query tenantId).",
    )
    billing: Billing = Field(
        default=Billing.COMMUNITY,
        description="Who pays the cloud bill: the community's own billing account, or 2i2c "
        "passing costs on monthly.",
    )
    gpu: StrictBool = Field(default=False, description="GPU node pools.")
    access_managed_by_2i2c: StrictBool = Field(
        default=True,
        description="2i2c can manage its own access to the account; false routes to Premium Tier.",
    )

    @model_validator(mode="after")
    def _region_of_provider(self) -> Cloud:
        allowed = REGIONS[self.provider]
        if self.region not in allowed:
            raise ValueError(
                f"region {self.region!r} is not a {self.provider.value} region; "
                f"choose one of: {', '.join(allowed)}"
            )
        if self.zone is not None:
            if self.provider is not CloudProvider.GCP:
                raise ValueError("zone is only used with provider gcp; set it to null")
            if not self.zone.startswith(self.region + "-"):
                raise ValueError(f"zone {self.zone!r} is not in region {self.region!r}")
        if self.account is not None:
            pattern, what = ACCOUNT_FORMATS[self.provider]
            if not re.fullmatch(pattern, self.account):
                raise ValueError(f"account {self.account!r} is not {what}")
        return self


ACCOUNT_FORMATS: dict[CloudProvider, tuple[str, str]] = {
    CloudProvider.AWS: (r"\d{12}", "a 12-digit AWS account id"),
    CloudProvider.GCP: (
        GCP_PROJECT_PATTERN,
        "a GCP project id (6-30 lowercase letters, digits and hyphens, starting with a letter)",
    ),
    CloudProvider.AZURE: (
        AZURE_SUBSCRIPTION_PATTERN,
        "an Azure subscription id (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
    ),
    CloudProvider.JETSTREAM2: (
        JETSTREAM2_ALLOCATION_PATTERN,
        "a Jetstream2 (ACCESS) allocation such as CIS230095",
    ),
}
"""What ``cloud.account`` is for each provider."""


class CommunityHub(_Model):
    auth: HubAuth = Field(
        default=HubAuth.GITHUB, description="Authentication of the community hub."
    )
    allowed_teams: tuple[Annotated[str, Field(pattern=TEAM_PATTERN)], ...] = Field(
        default=(), description="GitHub organizations or org:team entries allowed to log in."
    )
    dask_gateway: StrictBool = Field(default=False, description="Deploy a Dask gateway.")

    @model_validator(mode="after")
    def _authenticated(self) -> CommunityHub:
        if self.auth is HubAuth.SHARED_PASSWORD:
            raise ValueError(
                "the community hub must be authenticated: use github, cilogon or google"
            )
        return self


class WorkshopHub(_Model):
    enabled: StrictBool = Field(default=True, description="Deploy the workshop hub.")
    auth: HubAuth = Field(
        default=HubAuth.SHARED_PASSWORD, description="Workshop hub authentication."
    )


class BinderHub(_Model):
    enabled: StrictBool = Field(default=True, description="Deploy a BinderHub.")
    authenticated: StrictBool = Field(
        default=False, description="Require login to use the BinderHub."
    )


class Hubs(_Model):
    community: CommunityHub = CommunityHub()
    workshop: WorkshopHub = WorkshopHub()
    binder: BinderHub = BinderHub()


class FundedBy(_Model):
    name: str = Field(min_length=1, description="Funder name shown on the hub's home page.")
    url: Url | None = Field(default=None, description="Funder URL.")


class Branding(_Model):
    logo_url: Url | None = Field(default=None, description="Logo; null uses the default splash.")
    funded_by: FundedBy | None = Field(default=None, description="Funder shown on the home page.")


class Images(_Model):
    offered: tuple[Image, ...] = Field(
        default=(Image.SCIPY, Image.DATASCIENCE, Image.PANGEO, Image.ROCKER),
        description="Images offered in the profile list.",
    )
    bring_your_own: StrictBool = Field(default=True, description="Users may bring their own image.")
    dynamic_image_building: StrictBool = Field(default=True, description="Build images on the hub.")

    @field_validator("offered")
    @classmethod
    def _unique(cls, value: tuple[Image, ...]) -> tuple[Image, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each image may be listed only once")
        return value


class Storage(_Model):
    home_quota_gb: int = Field(
        default=10, gt=0, le=1000, strict=True, description="Home directory quota (GB)."
    )


IMAGE_LABELS: dict[Image, str] = {
    Image.SCIPY: "Jupyter Docker Stacks scipy-notebook",
    Image.DATASCIENCE: "Jupyter Docker Stacks datascience-notebook",
    Image.PANGEO: "Pangeo notebook",
    Image.ROCKER: "Rocker RStudio (geospatial)",
}
AUTH_LABELS: dict[HubAuth, str] = {
    HubAuth.GITHUB: "GitHub",
    HubAuth.CILOGON: "CILogon (your institution's login)",
    HubAuth.GOOGLE: "Google",
    HubAuth.SHARED_PASSWORD: "the shared workshop password",
}


class CommunityConfig(_Model):
    """One community's engagement, validated and immutable."""

    community_id: CommunityId
    name: str = Field(min_length=1, max_length=200, description="Display name of the community.")
    tier: Tier = Field(
        default=Tier.ADVANCED, description="Service tier; only advanced is onboarded."
    )
    website: Url | None = Field(default=None, description="The community's website.")
    representatives: tuple[Representative, ...] = Field(
        min_length=1, description="Community representatives; exactly one is the technical lead."
    )
    invoice_contact: Contact | None = Field(
        default=None, description="Who receives invoices; required for BD sign-off."
    )
    contract: Contract
    answers: Answers = Answers()
    cloud: Cloud
    github_org: GitHubLogin | None = Field(
        default=None, description="The community's GitHub organization."
    )
    hubs: Hubs = Hubs()
    branding: Branding = Branding()
    images: Images = Images()
    storage: Storage = Storage()
    domain: Annotated[str, Field(pattern=DOMAIN_PATTERN, max_length=253)] | None = Field(
        default=None, description="The community's own domain; null uses <community_id>.2i2c.cloud."
    )

    @field_validator("representatives")
    @classmethod
    def _one_technical_lead(cls, value: tuple[Representative, ...]) -> tuple[Representative, ...]:
        leads = [r.name for r in value if r.technical_lead]
        if len(leads) != 1:
            found = ", ".join(leads) if leads else "none"
            raise ValueError(
                f"exactly one representative must have technical_lead: true (found {found})"
            )
        emails = [r.email.lower() for r in value]
        if len(set(emails)) != len(emails):
            raise ValueError("each representative needs a distinct email")
        return value

    # Derived values: never entered by hand.

    @computed_field
    @property
    def base_domain(self) -> str:
        return self.domain or f"{self.community_id}.{PROVIDER_DOMAIN}"

    @computed_field
    @property
    def hub_urls(self) -> dict[str, str]:
        urls = {"community": f"https://{self.base_domain}"}
        if self.hubs.workshop.enabled:
            urls["workshop"] = f"https://workshop.{self.base_domain}"
        if self.hubs.binder.enabled:
            urls["binder"] = f"https://binder.{self.base_domain}"
        return urls

    @computed_field
    @property
    def grafana_url(self) -> str:
        return f"https://grafana.{self.community_id}.{PROVIDER_DOMAIN}"

    @computed_field
    @property
    def cluster_name(self) -> str:
        return self.community_id

    @computed_field
    @property
    def admin_users(self) -> list[str]:
        return [r.github for r in self.representatives]

    @property
    def technical_lead(self) -> Representative:
        return next(r for r in self.representatives if r.technical_lead)

    @property
    def representative_emails(self) -> list[str]:
        return [r.email for r in self.representatives]

    @property
    def missing_answers(self) -> list[str]:
        return [k for k, v in self.answers.model_dump().items() if not (v or "").strip()]

    def with_decisions(self, decisions: dict[str, Any]) -> CommunityConfig:
        """Apply technical decisions (dotted keys such as ``cloud.region``) and re-validate."""
        data = self.model_dump(mode="json", exclude_computed_fields=True)
        for dotted, value in decisions.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return parse_config(data)

    def to_dict(self) -> dict[str, Any]:
        """The config as entered (JSON types, no derived values)."""
        return self.model_dump(mode="json", exclude_computed_fields=True)


class ConfigError(ValueError):
    """A community config with one or more problems, each with its key path."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the community config:\n"
            + "\n".join(f"  {path}: {msg}" for path, msg in problems)
        )


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def problems_from(error: ValidationError) -> list[tuple[str, str]]:
    """Turn pydantic's errors into (key path, reason) pairs a user can act on."""
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if p not in ("function-after[_no_double_hyphen(), str]",))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against the community config reference)"
        elif err["type"] == "string_pattern_mismatch":
            msg = f"{err['input']!r} is not valid: {_pattern_hint(loc)}"
        problems.append((_path(loc), msg))
    return problems


def _pattern_hint(loc: tuple[Any, ...]) -> str:
    leaf = next((p for p in reversed(loc) if isinstance(p, str)), "")
    hints = {
        "community_id": "use 3-30 lowercase letters, digits and single hyphens, starting with a "
        "letter and ending with a letter or digit",
        "email": "expected an email address such as name@example.org",
        "github": "expected a GitHub login (1-39 letters, digits, single hyphens)",
        "github_org": "expected a GitHub organization login",
        "domain": "expected a lowercase domain name such as hub.example.org",
    }
    if leaf in ("website", "logo_url", "url"):
        return "expected an http(s) URL"
    if leaf == "allowed_teams" or isinstance(loc[-1], int):
        return "expected an organization or org:team-slug"
    return hints.get(leaf, "does not match the expected format")


def parse_config(data: Any) -> CommunityConfig:
    """Validate a mapping; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([("(top level)", "expected a mapping of keys to values")])
    try:
        return CommunityConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc)) from None


def load_config(path: str | Path) -> CommunityConfig:
    """Read a YAML or JSON community config file; every problem is a :class:`ConfigError`."""
    return parse_config(read_config_file(path))


def read_config_file(path: str | Path) -> Any:
    """The document of a YAML or JSON file: UTF-8 text, each key once, dates left as text.

    Dates stay text so that the model reads them and an impossible one (2026-02-30) is named
    by its key; a key given twice is an error, never "the last one wins".
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read it: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [("(file)", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})")]
        ) from None
    if str(path).endswith(".json"):
        return _read_json(text)
    return _read_yaml(text)


def _read_json(text: str) -> Any:
    duplicates: list[tuple[str, str]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in items:
            if key in found:
                duplicates.append((key, "this key is given more than once"))
            found[key] = value
        return found

    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not a number")

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=no_constant)
    except ValueError as exc:
        raise ConfigError([("(file)", f"not valid JSON: {exc}")]) from None
    if duplicates:
        raise ConfigError(duplicates)
    return data


class _YamlLoader(yaml.SafeLoader):
    """YAML's safe loader without implicit timestamps: dates reach the model as text."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_yaml(text: str) -> Any:
    try:
        loader = _YamlLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            duplicates = list(_duplicate_keys(node, ()))
            if duplicates:
                raise ConfigError(duplicates)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError([("(file)", f"not valid YAML: {exc}")]) from None


def _duplicate_keys(node: yaml.Node, loc: tuple[Any, ...]):
    """(key path, reason) for every key given twice in a mapping of the YAML tree."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                line = key_node.start_mark.line + 1
                yield (
                    _path((*loc, key)),
                    f"given twice (lines {seen[key]} and {line}); give each key once",
                )
            elif key is not None:
                seen[key] = key_node.start_mark.line + 1
            yield from _duplicate_keys(value_node, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index))
