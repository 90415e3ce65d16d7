"""Bundles: an organization's saved objects exported as one document named by stable keys, planned against
an organization (what applying would create, update and delete, and what conflicts) and applied in one
transaction, under the caller's role, through the same services as the API's writes."""

from __future__ import annotations

import graphlib
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ValidationError

from loupe import db
from loupe.config import get_settings
from loupe.errors import Conflict, DependencyUnavailable, DomainError, FieldIssue, InvalidInput, NotFound
from loupe.models.bundles import (
    BUNDLE_KINDS,
    BUNDLE_SCHEMA,
    Bundle,
    BundleApplied,
    BundleApplyRequest,
    BundleConflict,
    BundleDatasource,
    BundleDownload,
    BundleKind,
    BundlePlan,
    BundlePlanRequest,
    BundleSource,
    BundleUpload,
    PlannedChange,
)
from loupe.models.canvases import CanvasCreate, CanvasUpdate
from loupe.models.dashboards import DashboardCreate, DashboardUpdate
from loupe.models.identity import Principal, Role
from loupe.models.queries import QueryCreate, QueryUpdate
from loupe.models.schedules import ScheduleCreate, ScheduleUpdate
from loupe.models.snippets import SnippetCreate, SnippetUpdate
from loupe.models.visualizations import VisualizationCreate, VisualizationUpdate
from loupe.repositories import bundle_keys, crud
from loupe.repositories import revisions as revisions_repository
from loupe.repositories.datasources import DATASOURCES
from loupe.repositories.schedules import SCHEDULES
from loupe.results.page import PAGE_MAX_BYTES, body_text, proxy_bytes
from loupe.results.store import s3_client
from loupe.services import audit, revisions
from loupe.services.canvases import canvases
from loupe.services.dashboards import dashboards
from loupe.services.queries import queries
from loupe.services.resources import ResourceService, database_rules
from loupe.services.schedules import schedules
from loupe.services.snippets import snippets
from loupe.services.visualizations import visualizations

# Bundles too large for a request or response pass through the results bucket under this prefix, by
# short-lived signed URLs, at most this large.
BUNDLE_PREFIX = "bundles/"
SIGNED_SECONDS = 900
# A Lambda of 512 MB parses a JSON document of about a tenth of that.
MAX_UPLOAD_BYTES = 20 * 1024**2
# Ids stand in for objects a plan would create, so their references validate as any id does.
PLACEHOLDERS = uuid.UUID("6f1d4c7e-9a41-4b0c-8f5e-2d3b7a9c1e05")
BOOKKEEPING = ("key", "revision")


@dataclass(frozen=True)
class Kind:
    """One kind of saved object a bundle holds, and how it is written."""

    name: BundleKind
    resource_type: str
    service: ResourceService[Any, Any, Any]
    create_model: type[BaseModel]
    update_model: type[BaseModel]


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("snippets", "snippet", snippets, SnippetCreate, SnippetUpdate),
        Kind("queries", "query", queries, QueryCreate, QueryUpdate),
        Kind("visualizations", "visualization", visualizations, VisualizationCreate, VisualizationUpdate),
        Kind("dashboards", "dashboard", dashboards, DashboardCreate, DashboardUpdate),
        Kind("canvases", "canvas", canvases, CanvasCreate, CanvasUpdate),
        Kind("schedules", "schedule", schedules, ScheduleCreate, ScheduleUpdate),
    )
}
TYPE_OF_KIND: dict[str, str] = {"datasources": "datasource"} | {
    name: kind.resource_type for name, kind in KINDS.items()
}

# How a reference is named: (type, id) -> key, and back; None for a key that names nothing.
KeyOf = Callable[[str, UUID], str]
IdOf = Callable[[str, str], UUID | None]


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a list (a bundle is input: anything else is left for validation to refuse)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _options_refs(parameters: Any, rename: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    for parameter in _dicts(parameters):
        if isinstance(parameter.get("options_query"), dict):
            parameter["options_query"] = rename(dict(parameter["options_query"]))


def to_keys(kind: str, definition: Mapping[str, Any], key_of: KeyOf) -> dict[str, Any]:
    """A definition with its references (ids) named by key."""
    shown: dict[str, Any] = json.loads(json.dumps(definition, default=str))

    def options(source: dict[str, Any]) -> dict[str, Any]:
        return {"query": key_of("query", UUID(source.pop("query_id"))), **source}

    if kind == "queries":
        shown["datasource"] = key_of("datasource", UUID(shown.pop("datasource_id")))
        _options_refs(shown["parameters"], options)
    elif kind in ("visualizations", "schedules"):
        shown["query"] = key_of("query", UUID(shown.pop("query_id")))
    elif kind == "dashboards":
        _options_refs(shown["filters"], options)
        for tile in shown["tiles"]:
            shown_id = tile.pop("visualization_id")
            tile["visualization"] = key_of("visualization", UUID(shown_id)) if shown_id else None
    elif kind == "canvases":
        for node in shown["nodes"]:
            ref = node.pop("ref_id")
            node["ref"] = key_of(node["type"], UUID(ref)) if ref else None
    return shown


def to_ids(kind: str, item: Mapping[str, Any], id_of: IdOf, missing: list[str]) -> dict[str, Any]:
    """A bundle object as the API takes it: references by id (each key naming nothing goes in
    `missing`), without its bookkeeping."""
    body = {name: value for name, value in json.loads(json.dumps(item)).items() if name not in BOOKKEEPING}

    def resolved(resource_type: str, key: Any) -> str | None:
        found = id_of(resource_type, str(key))
        if found is None:
            missing.append(f"{resource_type} {key!r}")
            return None
        return str(found)

    def options(source: dict[str, Any]) -> dict[str, Any]:
        return {"query_id": resolved("query", source.pop("query", None)), **source}

    if kind == "queries":
        body["datasource_id"] = resolved("datasource", body.pop("datasource", None))
        _options_refs(body.get("parameters"), options)
    elif kind in ("visualizations", "schedules"):
        body["query_id"] = resolved("query", body.pop("query", None))
    elif kind == "dashboards":
        _options_refs(body.get("filters"), options)
        for tile in _dicts(body.get("tiles")):
            shown = tile.pop("visualization", None)
            tile["visualization_id"] = resolved("visualization", shown) if shown else None
    elif kind == "canvases":
        for node in _dicts(body.get("nodes")):
            ref, shows = node.pop("ref", None), node.get("type")
            if ref and shows not in ("query", "visualization"):
                missing.append(f"a {shows!r} node's ref {ref!r}")
            node["ref_id"] = (
                resolved(str(shows), ref) if ref and shows in ("query", "visualization") else None
            )
    return body


def _feeding(item: Mapping[str, Any]) -> list[str]:
    """The keys of the queries feeding a bundle query's options."""
    return [
        str(parameter["options_query"]["query"])
        for parameter in _dicts(item.get("parameters"))
        if isinstance(parameter.get("options_query"), dict) and parameter["options_query"].get("query")
    ]


def _revision_of(kind: str, row: Mapping[str, Any], organization_id: UUID) -> int | None:
    """The object's newest revision's number (None for a kind that keeps none, or before its first)."""
    service = KINDS[kind].service
    if service.revised is None:
        return None
    # A query carries its own.
    number = service.revision_number(dict(row))
    if number is not None:
        return number
    latest = revisions_repository.latest(organization_id, service.revised, row["id"])
    return latest["number"] if latest else None


def export(principal: Principal, include: list[BundleKind] | None) -> Bundle:
    """The organization's saved objects of the kinds asked for (all by default), by key, each kind in
    the order of its keys."""
    organization_id = principal.organization_id
    wanted = [kind for kind in BUNDLE_KINDS if include is None or kind in include]
    with db.transaction():
        keys = bundle_keys.of_organization(organization_id)

        def key_of(resource_type: str, resource_id: UUID) -> str:
            return keys.get((resource_type, resource_id), str(resource_id))

        document: dict[str, Any] = {
            "schema": BUNDLE_SCHEMA,
            "source": BundleSource(organization_id=organization_id),
        }
        for kind in wanted:
            if kind == "datasources":
                objects = [
                    {"key": key_of("datasource", row["id"]), "name": row["name"], "type": row["type"]}
                    for row in crud.all_of(DATASOURCES, organization_id)
                ]
            else:
                spec = KINDS[kind]
                objects = []
                for row in crud.all_of(spec.service.collection, organization_id):
                    shown = to_keys(kind, spec.service.definition(principal, row), key_of)
                    revision = _revision_of(kind, row, organization_id)
                    bookkeeping: dict[str, Any] = {"key": key_of(spec.resource_type, row["id"])}
                    if spec.service.revised is not None:
                        bookkeeping["revision"] = revision
                    objects.append({**bookkeeping, **shown})
            document[kind] = sorted(objects, key=lambda item: item["key"])
    # Built, not validated: an export is not bound by what one request may carry.
    return Bundle.model_construct(
        **{("schema_" if name == "schema" else name): value for name, value in document.items()}
    )


@dataclass
class Planned:
    """A plan, with what applying it needs: the id each key resolved to (the bundle's objects and what they
    reference), each object's version read, and the order of queries."""

    plan: BundlePlan
    targets: dict[tuple[str, str], UUID] = field(default_factory=dict)
    versions: dict[UUID, str] = field(default_factory=dict)
    query_order: list[str] = field(default_factory=list)
    # Deletes whose every user is deleted too: they go with cascade, whatever the order.
    cascading: set[UUID] = field(default_factory=set)


def _prunable(
    principal: Principal,
    changes: list[PlannedChange],
    rows: Mapping[str, Mapping[UUID, dict[str, Any]]],
    matched: set[tuple[str, UUID]],
    conflicts: list[BundleConflict],
) -> set[UUID]:
    """The deletes whose users all go too (or are the bundle's own objects, which it rewrites); a
    conflict for each delete something else still uses, which would refuse the apply."""
    deleting = {(TYPE_OF_KIND[change.kind], change.id) for change in changes if change.action == "delete"}
    cascading: set[UUID] = set()
    for change in changes:
        if change.action != "delete" or change.id is None:
            continue
        spec = KINDS[change.kind]
        users = spec.service.dependents(principal, rows[spec.resource_type][change.id])
        blocking = [user for user in users if (user.kind, user.id) not in deleting | matched]
        if blocking:
            named = ", ".join(f"{user.kind} {user.name!r}" for user in blocking[:3])
            conflicts.append(
                BundleConflict(
                    kind=change.kind,
                    key=change.key,
                    code="in_use",
                    message=f"Pruning it would break what the bundle does not hold: {named}",
                )
            )
        elif users and spec.service.cascades and all((user.kind, user.id) in deleting for user in users):
            cascading.add(change.id)
    return cascading


def _uncreatable(
    principal: Principal, item: Mapping[str, Any], present: Iterable[Mapping[str, Any]]
) -> tuple[Literal["missing_datasource", "invalid"], str] | None:
    """Why a bundle datasource the organization lacks cannot be created unconfigured; None: it can."""
    try:
        wanted = BundleDatasource.model_validate(item)
    except ValidationError as error:
        return "invalid", _validation_message(error)
    clash = next((row for row in present if row["name"] == wanted.name), None)
    if clash is not None:
        return "invalid", f"A {clash['type']} datasource is named {wanted.name!r} here"
    if principal.role < Role.ADMIN:
        return "missing_datasource", (
            "No datasource here has this key, id, or name and type: an admin creates it, or applies the"
            " bundle (which creates it without credentials, to configure)"
        )
    return None


def _placeholder(resource_type: str, key: str) -> UUID:
    return uuid.uuid5(PLACEHOLDERS, f"{resource_type}:{key}")


def _version_digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:32]


def _validation_message(error: ValidationError) -> str:
    first = FieldIssue.of_validation(error)[0]
    return f"{first.field or 'the object'}: {first.issue}"


def plan(principal: Principal, bundle: Bundle, prune: bool) -> Planned:
    """What applying the bundle would do to the caller's organization, and its conflicts; reads only."""
    organization_id = principal.organization_id
    held = [kind for kind in BUNDLE_KINDS if kind in bundle.model_fields_set]
    with db.transaction():
        keys = bundle_keys.of_organization(organization_id)
        rows: dict[str, dict[UUID, dict[str, Any]]] = {
            "datasource": {row["id"]: row for row in crud.all_of(DATASOURCES, organization_id)}
        }
        for kind in KINDS.values():
            rows[kind.resource_type] = {
                row["id"]: row for row in crud.all_of(kind.service.collection, organization_id)
            }
        by_key = {(resource_type, key): resource_id for (resource_type, resource_id), key in keys.items()}

        def existing(resource_type: str, key: str) -> UUID | None:
            found = by_key.get((resource_type, key))
            if found is not None and found in rows[resource_type]:
                return found
            try:
                literal = UUID(key)
            except ValueError:
                return None
            return literal if literal in rows[resource_type] else None

        conflicts: list[BundleConflict] = []
        targets: dict[tuple[str, str], UUID] = {}
        datasources: dict[str, UUID] = {}
        changes: list[PlannedChange] = []
        unconfigured: list[str] = []
        created_datasources: set[tuple[str, str]] = set()
        for item in bundle.datasources:
            key = item["key"]
            found = existing("datasource", key) or next(
                (
                    row["id"]
                    for row in rows["datasource"].values()
                    if row["name"] == item.get("name") and row["type"] == item.get("type")
                ),
                None,
            )
            if found is not None:
                datasources[key] = found
                targets[("datasource", key)] = found
                if not rows["datasource"][found]["configured"]:
                    unconfigured.append(key)
                continue
            problem = _uncreatable(principal, item, rows["datasource"].values())
            if problem is not None:
                code, message = problem
                conflicts.append(BundleConflict(kind="datasources", key=key, code=code, message=message))
                continue
            changes.append(PlannedChange(action="create", kind="datasources", key=key, id=None))
            unconfigured.append(key)
            created_datasources.add(("datasource", key))
        in_bundle = created_datasources | {
            (TYPE_OF_KIND[name], item["key"]) for name in KINDS for item in getattr(bundle, name)
        }
        for name in KINDS:
            for item in getattr(bundle, name):
                found = existing(TYPE_OF_KIND[name], item["key"])
                if found is not None:
                    targets[(TYPE_OF_KIND[name], item["key"])] = found
        key_by_target = {(resource_type, target): key for (resource_type, key), target in targets.items()}

        # The objects outside the bundle its references name, as resolved here: apply uses them as they are.
        referenced: dict[tuple[str, str], UUID] = {}

        def id_of(resource_type: str, key: str) -> UUID | None:
            if (resource_type, key) in targets:
                return targets[(resource_type, key)]
            if (resource_type, key) in in_bundle:
                return _placeholder(resource_type, key)
            found = existing(resource_type, key)
            if found is not None:
                referenced[(resource_type, key)] = found
            return found

        def key_of(resource_type: str, resource_id: UUID) -> str:
            return key_by_target.get((resource_type, resource_id)) or keys.get(
                (resource_type, resource_id), str(resource_id)
            )

        placeholders = {(kind_type, _placeholder(kind_type, key)): key for kind_type, key in in_bundle}

        def key_of_any(resource_type: str, resource_id: UUID) -> str:
            """The key of an id, a placeholder's (an object to create) included."""
            return placeholders.get((resource_type, resource_id)) or key_of(resource_type, resource_id)

        matched: set[tuple[str, UUID]] = set()
        # What the plan read: each matched object's definition and version, and every object's id.
        versions: dict[UUID, str] = {}
        states: list[str] = []
        same_source = bundle.source is not None and bundle.source.organization_id == organization_id
        for name, spec in KINDS.items():
            for item in getattr(bundle, name):
                key = item["key"]
                missing: list[str] = []
                body = to_ids(name, item, id_of, missing)
                if missing:
                    conflicts.append(
                        BundleConflict(
                            kind=spec.name,
                            key=key,
                            code="missing_reference",
                            message=f"It names what is neither in the bundle nor here: {', '.join(missing)}",
                        )
                    )
                    continue
                try:
                    normalized = spec.create_model.model_validate(body).model_dump(mode="json")
                except ValidationError as error:
                    conflicts.append(
                        BundleConflict(
                            kind=spec.name, key=key, code="invalid", message=_validation_message(error)
                        )
                    )
                    continue
                target = targets.get((spec.resource_type, key))
                if target is None:
                    changes.append(PlannedChange(action="create", kind=spec.name, key=key, id=None))
                    continue
                matched.add((spec.resource_type, target))
                row = rows[spec.resource_type][target]
                current = to_keys(name, spec.service.definition(principal, row), key_of)
                versions[target] = spec.service.version(row)
                states.append(f"{spec.resource_type}:{target}:{json.dumps(current, sort_keys=True)}")
                wanted = to_keys(name, normalized, key_of_any)
                compared = [field_name for field_name in wanted if field_name in current]
                differences = revisions.changes(
                    {field_name: current[field_name] for field_name in compared},
                    {field_name: wanted[field_name] for field_name in compared},
                )
                if not differences:
                    continue
                revision = _revision_of(name, row, organization_id)
                if same_source and item.get("revision") is not None and revision != item["revision"]:
                    conflicts.append(
                        BundleConflict(
                            kind=spec.name,
                            key=key,
                            code="changed_since_export",
                            message=f"It is at revision {revision} here, the bundle has revision"
                            f" {item['revision']}: export again, or drop `revision` to overwrite",
                        )
                    )
                    continue
                changes.append(
                    PlannedChange(action="update", kind=spec.name, key=key, id=target, changes=differences)
                )
        if prune:
            for name in reversed(held):
                if name == "datasources":
                    continue
                resource_type = TYPE_OF_KIND[name]
                for resource_id in rows[resource_type]:
                    if (resource_type, resource_id) not in matched and resource_id not in targets.values():
                        key = key_of(resource_type, resource_id)
                        changes.append(PlannedChange(action="delete", kind=name, key=key, id=resource_id))
            cascading = _prunable(principal, changes, rows, matched, conflicts)
        else:
            cascading = set()
        query_order, cycle = _query_order(bundle)
        if cycle:
            conflicts.append(
                BundleConflict(
                    kind="queries",
                    key=cycle[0],
                    code="cycle",
                    message=f"Queries feed each other's options in a circle: {' -> '.join(cycle)}",
                )
            )
        # Not the rows' change times: a schedule's run or a login inspection would move them.
        states += [
            f"{resource_type}:{resource_id}" for resource_type, found in rows.items() for resource_id in found
        ]
        states += [
            f"key:{resource_type}:{resource_id}:{key}" for (resource_type, resource_id), key in keys.items()
        ]
        base = _version_digest(states)
    return Planned(
        BundlePlan(
            changes=changes,
            conflicts=conflicts,
            datasources=datasources,
            unconfigured=unconfigured,
            base=base,
        ),
        {**referenced, **targets},
        versions,
        query_order,
        cascading,
    )


def _query_order(bundle: Bundle) -> tuple[list[str], list[str]]:
    """The bundle's queries, each after the queries feeding its options; and a cycle, if there is one."""
    keys = {item["key"] for item in bundle.queries}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for item in bundle.queries:
        sorter.add(item["key"], *(key for key in _feeding(item) if key in keys))
    try:
        return list(sorter.static_order()), []
    except graphlib.CycleError as error:
        return [], [str(key) for key in error.args[1]]


def plan_only(principal: Principal, request: BundlePlanRequest) -> BundlePlan:
    return plan(principal, _bundle_of(principal, request), request.prune).plan


def apply(principal: Principal, request: BundleApplyRequest) -> BundleApplied:
    """Apply the plan in one transaction, once its base is still the organization's state and it has no
    conflicts; each write goes through its resource's service (validation, references, revisions)."""
    organization_id = principal.organization_id
    bundle = _bundle_of(principal, request)
    with db.transaction():
        # One apply at a time per organization: two would both create what neither saw.
        bundle_keys.lock_organization(organization_id)
        planned = plan(principal, bundle, request.prune)
        if planned.plan.base != request.base:
            raise Conflict("The organization changed since this plan: plan again")
        if planned.plan.conflicts:
            first = planned.plan.conflicts[0]
            raise Conflict(
                f"The plan has {len(planned.plan.conflicts)} conflicts; the first: {first.kind}"
                f" {first.key!r}: {first.message}"
            )
        # What the plan resolved, and the objects created as the apply goes (in dependency order).
        targets = dict(planned.targets)

        def id_of(resource_type: str, key: str) -> UUID | None:
            return targets.get((resource_type, key))

        for created in planned.plan.changes:
            if created.kind == "datasources":
                wanted = BundleDatasource.model_validate(
                    next(item for item in bundle.datasources if item["key"] == created.key)
                )
                with database_rules():
                    row = crud.insert(
                        DATASOURCES,
                        organization_id,
                        {
                            "name": wanted.name,
                            "type": wanted.type,
                            "connection_ciphertext": None,
                            "connection_display": "",
                            "created_by": principal.user_id,
                        },
                    )
                targets[("datasource", created.key)] = row["id"]
                bundle_keys.put(organization_id, "datasource", created.key, row["id"])
                audit.record_by(
                    principal,
                    "datasource.created",
                    target_type="datasource",
                    target_id=row["id"],
                    metadata={"name": wanted.name, "unconfigured": True},
                )
        actions: dict[tuple[str, str], PlannedChange] = {
            (change.kind, change.key): change for change in planned.plan.changes
        }
        for name, spec in KINDS.items():
            items = {item["key"]: (index, item) for index, item in enumerate(getattr(bundle, name))}
            order = planned.query_order if name == "queries" else list(items)
            for key in order:
                index, item = items[key]
                change = actions.get((name, key))
                body = to_ids(name, item, id_of, [])
                with _located(name, index):
                    if change is not None and change.action == "create":
                        made = spec.service.create(principal, spec.create_model.model_validate(body))
                        targets[(spec.resource_type, key)] = made.resource.id
                    elif change is not None:
                        assert change.id is not None
                        if name == "schedules":
                            body["alert_rules"] = _kept_webhooks(organization_id, change.id, body)
                        # Every field, as planned: one the object leaves out takes its default.
                        whole = spec.create_model.model_validate(body).model_dump(mode="json")
                        fields = {
                            name_: whole[name_] for name_ in whole if name_ in spec.update_model.model_fields
                        }
                        # The version planned: an edit made since (after the plan was read) is a 412.
                        spec.service.update(
                            principal,
                            change.id,
                            spec.update_model.model_validate(fields),
                            frozenset({planned.versions[change.id]}),
                        )
                bundle_keys.put(organization_id, spec.resource_type, key, targets[(spec.resource_type, key)])
        for change in planned.plan.changes:
            if change.action == "delete":
                assert change.id is not None
                with _located(change.kind, None):
                    KINDS[change.kind].service.delete(
                        principal, change.id, None, cascade=change.id in planned.cascading
                    )
        for key, datasource_id in planned.plan.datasources.items():
            bundle_keys.put(organization_id, "datasource", key, datasource_id)
        counted = {
            action: sum(c.action == action for c in planned.plan.changes)
            for action in ("create", "update", "delete")
        }
        audit.record_by(
            principal,
            "bundle.applied",
            target_type="organization",
            target_id=organization_id,
            metadata=counted,
        )
    return BundleApplied.model_validate(planned.plan.model_dump())


def _objects() -> tuple[Any, str]:
    """The S3 client and the bucket bundles too large for a request or response go through."""
    bucket = get_settings().results_bucket
    if bucket is None:
        raise DependencyUnavailable("Large bundles need LOUPE_RESULTS_BUCKET")
    return s3_client(), bucket


def _object_key(organization_id: UUID, name: str) -> str:
    # Under its own prefix: the bucket's lifecycle rule removes these after a day.
    return f"{BUNDLE_PREFIX}{organization_id}/{name}.json"


def _expiry() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=SIGNED_SECONDS)


def new_upload(principal: Principal) -> BundleUpload:
    """A short-lived signed URL to PUT a bundle too large for a request."""
    client, bucket = _objects()
    upload_id = uuid.uuid4()
    url: str = client.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": bucket,
            "Key": _object_key(principal.organization_id, str(upload_id)),
            "ContentType": "application/json",
        },
        ExpiresIn=SIGNED_SECONDS,
    )
    return BundleUpload(upload_id=upload_id, url=url, expires_at=_expiry())


def export_document(principal: Principal, include: list[BundleKind] | None) -> dict[str, Any]:
    """The bundle as a response's body: only the kinds asked for (a kind a bundle holds is one whose
    objects `prune` may delete); a 409 past what a response carries."""
    body: dict[str, Any] = export(principal, include).model_dump(
        mode="json", by_alias=True, exclude_unset=True
    )
    if proxy_bytes(body_text(body)) > PAGE_MAX_BYTES:
        raise Conflict(
            "The bundle is larger than a response carries: GET /bundles/download gives a signed URL of it,"
            " or ask for fewer kinds with ?include="
        )
    return body


def export_url(principal: Principal, include: list[BundleKind] | None) -> BundleDownload:
    """The bundle written beside the results, and a short-lived signed URL of it."""
    exported = export(principal, include).model_dump(mode="json", by_alias=True, exclude_unset=True)
    client, bucket = _objects()
    key = _object_key(principal.organization_id, f"export-{uuid.uuid4()}")
    client.put_object(
        Bucket=bucket, Key=key, Body=json.dumps(exported).encode(), ContentType="application/json"
    )
    url: str = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=SIGNED_SECONDS
    )
    return BundleDownload(url=url, expires_at=_expiry())


def _bundle_of(principal: Principal, request: BundlePlanRequest) -> Bundle:
    """The request's bundle, or the one uploaded under its `upload_id` (a 404 once it expired)."""
    if request.bundle is not None:
        return request.bundle
    assert request.upload_id is not None
    from botocore.exceptions import ClientError  # as boto3: only when a bundle is uploaded

    client, bucket = _objects()
    key = _object_key(principal.organization_id, str(request.upload_id))
    try:
        found = client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        # Without s3:ListBucket, S3 answers a missing object with 403.
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "AccessDenied", "404", "403"):
            raise NotFound("No such upload: it was never sent, or it expired") from None
        raise DependencyUnavailable("The bundle store cannot be read right now") from None
    if found["ContentLength"] > MAX_UPLOAD_BYTES:
        raise InvalidInput(issues=[FieldIssue("upload_id", f"the bundle exceeds {MAX_UPLOAD_BYTES} bytes")])
    text = found["Body"].read()
    try:
        return Bundle.model_validate_json(text)
    except ValidationError as error:
        raise InvalidInput(
            "The uploaded bundle is not one",
            issues=FieldIssue.of_validation(error, "upload.")[:20],
        ) from None


def _kept_webhooks(organization_id: UUID, schedule_id: UUID, body: Mapping[str, Any]) -> Any:
    """The bundle's alert rules, each keeping the webhook, destinations, muting and id (so the state) of
    the schedule's rule it stands for (the one of its name, else the one at its place): a bundle carries
    none of them, and applying one never clears them."""
    rules = body.get("alert_rules")
    current = crud.get(SCHEDULES, organization_id, schedule_id)
    if not isinstance(rules, list) or current is None:
        return rules
    stored: list[dict[str, Any]] = current["alert_rules"]
    named = {rule["name"]: rule for rule in stored if rule.get("name")}
    kept = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            kept.append(rule)
            continue
        name = rule.get("name")
        was = named.get(name) if name else (stored[index] if index < len(stored) else None)
        local = (
            {name: was.get(name) for name in ("webhook_url", "destination_ids", "muted_until")} if was else {}
        )
        kept.append({**rule, "id": was["id"], **local} if was else rule)
    return kept


@contextmanager
def _located(kind: str, index: int | None) -> Iterator[None]:
    """A write's refusal, named by the bundle object that caused it (a 422: the bundle is what is wrong)."""
    where = f"bundle.{kind}" + (f".{index}" if index is not None else "")
    try:
        yield
    except InvalidInput as error:
        raise InvalidInput(
            f"{where}: {error.message}",
            issues=[FieldIssue(f"{where}.{issue.field}", issue.issue) for issue in error.issues],
        ) from None
    except Conflict:
        raise
    except DomainError as error:
        raise InvalidInput(f"{where}: {error.message}", issues=[FieldIssue(where, error.message)]) from None
