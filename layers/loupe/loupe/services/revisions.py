"""History of queries, visualizations, dashboards and canvases: a revision kept on each change (by the
resource services), listed, read, compared, and restored as a new revision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from loupe import db
from loupe.errors import FieldIssue, InvalidInput, NotFound
from loupe.models.common import Page
from loupe.models.identity import Principal
from loupe.models.revisions import FieldChange, RevisionListQuery, RevisionOut, RevisionSummary
from loupe.repositories import revisions as repository
from loupe.versions import ExpectedVersions, version_of_content

if TYPE_CHECKING:
    from loupe.services.resources import ResourceService, Versioned

# The revision a restore copies, for the revision its update keeps.
_restoring: ContextVar[int | None] = ContextVar("loupe_restoring", default=None)


@contextmanager
def restoring(number: int) -> Iterator[None]:
    token = _restoring.set(number)
    try:
        yield
    finally:
        _restoring.reset(token)


def record(
    organization_id: UUID,
    principal: Principal | None,
    resource_type: str,
    resource_id: UUID,
    definition: dict[str, Any],
    number: int | None = None,
) -> None:
    """Keep `definition` as the resource's next revision (or as `number`, when above the newest), unless
    it is the newest one already: a write that changes nothing adds nothing. `principal` None: the
    author is unknown (a resource's state from before history began)."""
    latest = repository.latest(organization_id, resource_type, resource_id)
    if latest is not None and latest["definition"] == definition:
        return
    if number is None or (latest is not None and number <= latest["number"]):
        number = (latest["number"] if latest else 0) + 1
    author = (principal.user_id, principal.api_key_id) if principal else (None, None)
    if author[1] is not None:
        author = (None, author[1])
    # Only the authored revision a restore keeps is the restore; its resource's state before is not.
    restored_from = _restoring.get() if principal is not None else None
    repository.insert(organization_id, resource_type, resource_id, number, definition, author, restored_from)


def changes(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """Each leaf where `after` differs from `before`, as JSON pointers; lists of one length compare item
    by item, others whole."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[FieldChange] = []
        for key in sorted(before.keys() | after.keys()):
            step = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            found += changes(before.get(key), after.get(key), step)
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            change
            for index, (old, new) in enumerate(zip(before, after, strict=True))
            for change in changes(old, new, f"{path}/{index}")
        ]
    return [] if before == after else [FieldChange(path=path or "/", before=before, after=after)]


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    author = None
    if row["author_api_key_id"] is not None:
        author = {"kind": "api_key", "id": row["author_api_key_id"]}
    elif row["author_user_id"] is not None:
        author = {"kind": "user", "id": row["author_user_id"]}
    return {
        "number": row["number"],
        "author": author,
        "created_at": row["created_at"],
        "restored_from": row["restored_from"],
    }


def history(
    service: ResourceService[Any, Any, Any], principal: Principal, resource_id: UUID, query: RevisionListQuery
) -> Page[RevisionSummary]:
    """The resource's revisions, newest first (a 404 for a resource the caller cannot see)."""
    resource_type = _revised(service)
    with db.transaction():
        service.require(principal, resource_id)
        rows, total = repository.page(
            principal.organization_id, resource_type, resource_id, query.limit, query.offset
        )
    return Page[RevisionSummary](
        items=[RevisionSummary.model_validate(_summary(row)) for row in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


def _revision(principal: Principal, resource_type: str, resource_id: UUID, number: int) -> dict[str, Any]:
    row = repository.get(principal.organization_id, resource_type, resource_id, number)
    if row is None:
        raise NotFound(f"No revision {number}: it never was, or it was pruned")
    return row


def revision(
    service: ResourceService[Any, Any, Any],
    principal: Principal,
    resource_id: UUID,
    number: int,
    diff_to: int | None,
) -> tuple[RevisionOut, str]:
    """One revision with its definition (with `diff_to`, the fields that differ from that one), and its
    version: a revision never changes, so its version is its identity."""
    resource_type = _revised(service)
    with db.transaction():
        service.require(principal, resource_id)
        found = _revision(principal, resource_type, resource_id, number)
        other = _revision(principal, resource_type, resource_id, diff_to) if diff_to is not None else None
    shown = RevisionOut.model_validate(
        {
            **_summary(found),
            "definition": found["definition"],
            "changes": changes(other["definition"], found["definition"]) if other is not None else None,
        }
    )
    return shown, version_of_content(f"{resource_type}:{resource_id}:{number}:{diff_to}")


def restore(
    service: ResourceService[Any, Any, Any],
    update_model: type[BaseModel],
    principal: Principal,
    resource_id: UUID,
    number: int,
    expected: ExpectedVersions,
) -> Versioned[Any]:
    """Update the resource to revision `number`'s definition (checked as any update is, If-Match
    included); the update keeps a new revision that says it restored `number`."""
    resource_type = _revised(service)
    with db.transaction():
        found = _revision(principal, resource_type, resource_id, number)
        try:
            body = update_model.model_validate(
                {
                    name: value
                    for name, value in found["definition"].items()
                    if name in update_model.model_fields
                }
            )
        except ValidationError as error:
            # Kept before a rule it now breaks: say which, as an update's refusal would.
            raise InvalidInput(
                f"Revision {number} no longer passes the {resource_type}'s checks",
                issues=FieldIssue.of_validation(error),
            ) from None
        with restoring(number):
            return service.update(principal, resource_id, body, expected)


def _revised(service: ResourceService[Any, Any, Any]) -> str:
    assert service.revised is not None, f"{service.noun} keeps no revisions"
    return service.revised
