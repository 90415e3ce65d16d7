"""Domain errors: what went wrong, in the domain's own terms (facts and plain field names).

Services raise these and know nothing of HTTP; `loupe.api.errors` decides how a client sees each one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal
from uuid import UUID

if TYPE_CHECKING:
    from pydantic import ValidationError


@dataclass(frozen=True)
class FieldIssue:
    """What is wrong with one field of the caller's input: `field` is its dotted path inside that
    input (`tiles.2.visualization_id`), empty for the input as a whole."""

    field: str
    issue: str

    @classmethod
    def of_validation(cls, error: ValidationError, prefix: str = "") -> list[FieldIssue]:
        """A model's refusal of input the service validated itself (not the request's own), each field
        under `prefix`."""
        return [
            cls(prefix + ".".join(str(part) for part in issue["loc"]), issue["msg"])
            for issue in error.errors()
        ]


class DomainError(Exception):
    """A refusal the caller is meant to see and can act on."""

    default_message: ClassVar[str] = "The request cannot be carried out"

    def __init__(
        self,
        message: str | None = None,
        *,
        issues: Sequence[FieldIssue] = (),
        keep_changes: bool = False,
    ) -> None:
        self.message = message or self.default_message
        self.issues = tuple(issues)
        # Some refusals must still persist what led to them (a failed login attempt, a session revoked
        # for token reuse): the unit of work commits before the error is reported.
        self.keep_changes = keep_changes
        super().__init__(self.message)


class InvalidRequest(DomainError):
    """The request cannot be understood as it is (malformed, of the wrong kind)."""

    default_message = "Bad request"


class Unauthenticated(DomainError):
    """The caller's credentials are missing, wrong or no longer valid."""

    default_message = "Authentication required"


class MissingCredentials(Unauthenticated):
    """The caller sent no credentials at all."""


class NotPermitted(DomainError):
    """The caller is known but its role or kind may not do this."""

    default_message = "Your role does not allow this"


class NotFound(DomainError):
    """The resource does not exist in the caller's organization (or the caller may not learn it does)."""

    default_message = "Not found"


class ReferenceNotFound(NotFound):
    """A field of the caller's input names a resource that does not exist in its organization."""


class Conflict(DomainError):
    """The request contradicts the current state (a duplicate, a resource still in use)."""

    default_message = "Conflict"


DependentKind = Literal["query", "visualization", "dashboard", "canvas", "schedule", "subscription"]


@dataclass(frozen=True)
class Dependent:
    """A resource that uses the one being deleted (a dashboard through its tiles, a canvas through its
    nodes)."""

    kind: DependentKind
    id: UUID
    name: str


class InUse(Conflict):
    """The resource is still used by others; deleting it with them (cascade) is the caller's choice."""

    def __init__(self, noun: str, dependents: Sequence[Dependent], *, can_cascade: bool = True) -> None:
        self.dependents = tuple(dependents)
        counts: dict[str, int] = {}
        for dependent in self.dependents:
            counts[dependent.kind] = counts.get(dependent.kind, 0) + 1
        used_by = ", ".join(f"{count} {kind}{'' if count == 1 else 's'}" for kind, count in counts.items())
        remedy = (
            "delete with cascade=true to remove or detach them too" if can_cascade else "change them first"
        )
        super().__init__(f"The {noun} is used by {used_by}; {remedy}")


class OptionsUnavailable(Conflict):
    """A dropdown's options query has no result to take the options from (never run, expired, or without
    the column named)."""


class ResultExpired(DomainError):
    """A run's stored result was removed by its organization's retention."""

    default_message = "The result has expired"


class VersionMismatch(DomainError):
    """A write was based on a version of the resource that is no longer current."""

    default_message = "The resource has changed since it was read"


class InvalidInput(DomainError):
    """The input is well formed but breaks a rule; `issues` name the fields."""

    default_message = "Request validation failed"


class LoginRefused(InvalidInput):
    """A datasource's login may reach beyond its data (a superuser, the server's files or programs, code
    the SQL guard cannot see into), and the admin has not accepted that risk; `issues` name each."""

    default_message = "The datasource's login may do more than read"


class InvalidListQuery(InvalidInput):
    """A listing or reading option (sort, filter, format) is not one the resource offers."""


class RowTooLarge(DomainError):
    """One row of a result is larger than a page may be, so no page can hold it; an export can."""

    def __init__(self, offset: int, size: int, limit: int) -> None:
        self.offset = offset
        super().__init__(
            f"Row {offset} takes {size} bytes once serialized, over the {limit} bytes a page may hold;"
            " export the run (POST /runs/{id}/exports) to read it",
            issues=[FieldIssue("offset", f"row {offset} is larger than a page")],
        )


class RowsExceedFormat(InvalidListQuery):
    """The result has more rows than the file format holds (an XLSX worksheet's 1,048,576)."""


class ExportTooLarge(Conflict):
    """The result is too large to export inside the request; a background export takes it."""

    default_message = "The result is too large to export at once"


class RateLimited(DomainError):
    """The caller did this too often; it may try again after `retry_after_seconds`."""

    default_message = "Too many requests"

    def __init__(
        self, message: str | None = None, *, retry_after_seconds: int, keep_changes: bool = False
    ) -> None:
        self.retry_after_seconds = max(1, retry_after_seconds)
        super().__init__(message, keep_changes=keep_changes)


class TooManyAttempts(RateLimited):
    """Too many failed attempts (sign-in, reset) from one address or for one account."""

    default_message = "Too many failed attempts; try again later"


class DependencyUnavailable(DomainError):
    """Something Loupe depends on (a queue, KMS, a store) cannot be reached; trying again after
    `retry_after_seconds` may work."""

    default_message = "A dependency is unavailable; try again shortly"

    def __init__(self, message: str | None = None, *, retry_after_seconds: int = 5) -> None:
        self.retry_after_seconds = max(1, retry_after_seconds)
        super().__init__(message)
