"""The rules every tenant resource shares: tenancy, references, versions, database errors as domain errors.

A resource's service subclasses ResourceService and overrides only what is its own (how a body
becomes columns, extra checks, how a row is shown).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

import psycopg.errors
from pydantic import BaseModel

from loupe import db
from loupe.errors import Conflict, Dependent, FieldIssue, InUse, InvalidInput, NotFound, ReferenceNotFound
from loupe.models.common import ListQuery, Page
from loupe.models.identity import Principal
from loupe.repositories import crud, listing
from loupe.repositories import revisions as revisions_repository
from loupe.repositories.listing import Collection
from loupe.services import revisions
from loupe.versions import ExpectedVersions, require_version, version_of

OutT = TypeVar("OutT", bound=BaseModel)
CreateT = TypeVar("CreateT", bound=BaseModel)
UpdateT = TypeVar("UpdateT", bound=BaseModel)


@dataclass(frozen=True)
class Versioned(Generic[OutT]):
    """A resource as read, with the version it was read at."""

    resource: OutT
    version: str


def require_references(
    collection: Collection, organization_id: UUID, references: Sequence[tuple[str, UUID]]
) -> None:
    """References in a body (field, id) must name resources of the caller's organization; one query
    for all of them. Another organization's resource does not exist as far as the caller learns (404)."""
    wanted = {resource_id for _, resource_id in references}
    if not wanted:
        return
    missing = wanted - crud.existing_ids(collection, organization_id, wanted)
    if missing:
        fields = [field for field, resource_id in references if resource_id in missing]
        raise ReferenceNotFound(
            f"{fields[0]} names nothing in this organization",
            issues=[FieldIssue(field, "not found") for field in fields],
        )


def require_reference(collection: Collection, organization_id: UUID, resource_id: UUID, field: str) -> None:
    require_references(collection, organization_id, [(field, resource_id)])


@contextmanager
def database_rules() -> Iterator[None]:
    """The database's hard rules (constraints), reported like the service's soft ones."""
    try:
        yield
    except psycopg.errors.UniqueViolation:
        raise Conflict("A resource with these values already exists") from None
    except psycopg.errors.ForeignKeyViolation as error:
        if "is still referenced" in str(error):
            raise Conflict("Other resources still use this one") from None
        raise NotFound("A referenced resource does not exist") from None
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as error:
        constraint = error.diag.constraint_name or error.diag.column_name or "a constraint"
        raise InvalidInput(issues=[FieldIssue("", f"violates {constraint}")]) from None


class ResourceReader(Generic[OutT]):
    """Read and list one kind of resource, in the caller's organization."""

    def __init__(self, collection: Collection, out: type[OutT], noun: str) -> None:
        self.collection = collection
        self.out = out
        self.noun = noun

    def to_out(self, row: dict[str, Any]) -> OutT:
        """How a row is shown; subclasses override it."""
        return self.out.model_validate(row)

    def version(self, row: dict[str, Any]) -> str:
        """The row's ETag; called inside the transaction that read the row."""
        return version_of(row["id"], row["updated_at"])

    def versioned(self, row: dict[str, Any]) -> Versioned[OutT]:
        """The row as the API shows it, with its ETag; inside the transaction that read the row."""
        return Versioned(self.to_out(row), self.version(row))

    def get(self, principal: Principal, resource_id: UUID) -> Versioned[OutT]:
        with db.transaction():
            return self.versioned(self._existing(principal, resource_id))

    def list(self, principal: Principal, query: ListQuery) -> Page[OutT]:
        filters = {name: getattr(query, name, None) for name in self.collection.filters}
        with db.transaction():
            rows, total = listing.list_page(self.collection, principal.organization_id, query, **filters)
        return Page[self.out](  # type: ignore[name-defined]
            items=[self.to_out(row) for row in rows], total=total, limit=query.limit, offset=query.offset
        )

    def require(self, principal: Principal, resource_id: UUID) -> None:
        """A 404 unless the caller's organization has the resource; nothing more is read (its tiles,
        its latest run) than the row."""
        self._existing(principal, resource_id)

    def _existing(
        self, principal: Principal, resource_id: UUID, *, for_update: bool = False
    ) -> dict[str, Any]:
        row = crud.get(self.collection, principal.organization_id, resource_id, for_update=for_update)
        if row is None:
            raise NotFound(f"No such {self.noun}")
        return row


class ResourceService(ResourceReader[OutT], Generic[CreateT, UpdateT, OutT]):
    """Create, read, list, update and delete one kind of resource, in the caller's organization.
    Subclasses override how a body becomes columns and what a delete must not break."""

    # The resource type its revisions are kept under (None: it keeps none), and the fields of its
    # shown form that are not its definition.
    revised: ClassVar[str | None] = None
    unrevised: ClassVar[frozenset[str]] = frozenset({"id", "created_by", "created_at", "updated_at"})

    def definition(self, principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
        """What a revision keeps of the row: the resource as shown, less its id, times and author."""
        return self.to_out(row).model_dump(mode="json", exclude=set(self.unrevised))

    def revision_number(self, row: dict[str, Any]) -> int | None:
        """The number the row's revision takes; None: the one after the newest."""
        return None

    def after_create(self, principal: Principal, body: CreateT, row: dict[str, Any]) -> None:
        """Write what the resource keeps beside its row, once the row exists; nothing by default."""

    def _revise(self, principal: Principal, row: dict[str, Any], *, authored: bool = True) -> None:
        """Keep the row's revision (a resource that keeps them); unauthored: its state from before."""
        if self.revised is not None:
            revisions.record(
                principal.organization_id,
                principal if authored else None,
                self.revised,
                row["id"],
                self.definition(principal, row),
                self.revision_number(row),
            )

    def values_for_create(self, principal: Principal, body: CreateT) -> dict[str, Any]:
        return body.model_dump()

    def values_for_update(
        self, principal: Principal, body: UpdateT, current: dict[str, Any]
    ) -> dict[str, Any]:
        return body.model_dump(exclude_unset=True)

    # Whether a delete may take the dependents with it (`cascade`); without, they must change first.
    cascades = False

    def dependents(self, principal: Principal, current: dict[str, Any]) -> list[Dependent]:
        """What uses the resource, which a delete refuses to break unless asked to cascade; none by
        default."""
        return []

    def remove_dependents(
        self, principal: Principal, current: dict[str, Any], found: list[Dependent]
    ) -> None:
        """Delete or detach `found` before the resource goes (a cascade); only resources with dependents
        have any."""
        raise AssertionError(f"a {self.noun} has no dependents to remove")

    def create(self, principal: Principal, body: CreateT) -> Versioned[OutT]:
        with db.transaction():
            values = self.values_for_create(principal, body)
            if "created_by" in self.collection.writable:
                values.setdefault("created_by", principal.user_id)
            with database_rules():
                row = crud.insert(self.collection, principal.organization_id, values)
            self.after_create(principal, body, row)
            self._revise(principal, row)
            return self.versioned(row)

    def update(
        self, principal: Principal, resource_id: UUID, body: UpdateT, expected: ExpectedVersions
    ) -> Versioned[OutT]:
        with db.transaction():
            current = self._existing(principal, resource_id, for_update=True)
            require_version(expected, self.version(current))
            # Its state, unless it is the newest revision already (made before history began, or changed
            # by a cascade), is kept first, without an author.
            self._revise(principal, current, authored=False)
            values = self.values_for_update(principal, body, current)
            with database_rules():
                row = crud.update(self.collection, principal.organization_id, resource_id, values)
            assert row is not None  # locked above
            self._revise(principal, row)
            return self.versioned(row)

    def delete(
        self, principal: Principal, resource_id: UUID, expected: ExpectedVersions, *, cascade: bool = False
    ) -> None:
        """Delete the resource; one still in use only with `cascade`, which deletes or detaches what uses
        it too (InUse without it)."""
        with db.transaction():
            current = self._existing(principal, resource_id, for_update=True)
            require_version(expected, self.version(current))
            found = self.dependents(principal, current)
            if found and not cascade:
                raise InUse(self.noun, found, can_cascade=self.cascades)
            if found:
                self.remove_dependents(principal, current, found)
            with database_rules():
                crud.delete(self.collection, principal.organization_id, resource_id)
            if self.revised is not None:
                revisions_repository.forget(principal.organization_id, self.revised, resource_id)
