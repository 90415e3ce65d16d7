"""What uses a datasource, a query, a visualization, a dashboard or a destination, and removing it with
them (a delete's cascade): queries of a datasource; visualizations and schedules of a query, and queries
whose dropdowns it feeds; dashboards and canvases showing them; subscriptions delivering them or to a
destination, and alert rules notifying one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from loupe.errors import Dependent, DependentKind
from loupe.models.identity import Principal
from loupe.repositories import canvases, crud, dashboard_tiles
from loupe.repositories import schedules as schedules_repository
from loupe.repositories import subscriptions as subscriptions_repository
from loupe.repositories.dashboards import DASHBOARDS
from loupe.repositories.queries import QUERIES
from loupe.repositories.schedules import SCHEDULES
from loupe.repositories.subscriptions import SUBSCRIPTIONS
from loupe.repositories.visualizations import VISUALIZATIONS
from loupe.services import audit

# What a cascade deletes (and a datasource's queries); dashboards lose their tiles of the deleted
# visualizations (the tiles' foreign key), canvases their nodes of the deleted queries and visualizations,
# and the queries whose dropdowns a deleted query fed keep those parameters, without options (detached).
DELETED = {"visualization": VISUALIZATIONS, "schedule": SCHEDULES, "subscription": SUBSCRIPTIONS}


def _named(kind: DependentKind, rows: Sequence[dict[str, Any]]) -> list[Dependent]:
    return [Dependent(kind, row["id"], row["name"]) for row in rows]


def _distinct(dependents: list[Dependent]) -> list[Dependent]:
    """Each dependent once (a dashboard may both show a visualization and take a filter's options from
    its query), in the order first found."""
    return list(dict.fromkeys(dependents))


def _delivering(organization_id: UUID, resource_type: str, resource_ids: list[UUID]) -> list[Dependent]:
    return _named(
        "subscription", subscriptions_repository.showing(organization_id, resource_type, resource_ids)
    )


def of_visualizations(organization_id: UUID, visualization_ids: list[UUID]) -> list[Dependent]:
    return [
        *_named("dashboard", dashboard_tiles.dashboards_showing(organization_id, visualization_ids)),
        *_named("canvas", canvases.referencing(organization_id, visualization_ids)),
        *_delivering(organization_id, "visualization", visualization_ids),
    ]


def of_queries(organization_id: UUID, query_ids: list[UUID]) -> list[Dependent]:
    visualizations = _named(
        "visualization", crud.named_by(VISUALIZATIONS, organization_id, "query_id", query_ids)
    )
    shown = [*query_ids, *(visualization.id for visualization in visualizations)]
    return _distinct(
        [
            *visualizations,
            *_named(
                "dashboard",
                dashboard_tiles.dashboards_showing(organization_id, [v.id for v in visualizations]),
            ),
            *_named("canvas", canvases.referencing(organization_id, shown)),
            *_named("schedule", crud.named_by(SCHEDULES, organization_id, "query_id", query_ids)),
            *_delivering(organization_id, "query", query_ids),
            *_delivering(organization_id, "visualization", [v.id for v in visualizations]),
            *_named("query", crud.fed_by(QUERIES, "parameters", organization_id, query_ids)),
            *_named("dashboard", crud.fed_by(DASHBOARDS, "filters", organization_id, query_ids)),
        ]
    )


def of_query(organization_id: UUID, query_id: UUID) -> list[Dependent]:
    return of_queries(organization_id, [query_id])


def of_visualization(organization_id: UUID, visualization_id: UUID) -> list[Dependent]:
    return of_visualizations(organization_id, [visualization_id])


def of_dashboard(organization_id: UUID, dashboard_id: UUID) -> list[Dependent]:
    return _delivering(organization_id, "dashboard", [dashboard_id])


def of_destination(organization_id: UUID, destination_id: UUID) -> list[Dependent]:
    """Subscriptions and alert rules that send to it: they name their destinations, so they change first
    (a destination is never removed from under them by a cascade)."""
    return [
        *_named("subscription", subscriptions_repository.sending_to(organization_id, destination_id)),
        *_named("schedule", schedules_repository.alerting_to(organization_id, destination_id)),
    ]


def of_datasource(organization_id: UUID, datasource_id: UUID) -> list[Dependent]:
    queries = _named("query", crud.named_by(QUERIES, organization_id, "datasource_id", [datasource_id]))
    return _distinct([*queries, *of_queries(organization_id, [query.id for query in queries])])


def remove(principal: Principal, noun: str, resource_id: UUID, dependents: Sequence[Dependent]) -> None:
    """Delete the dependents that cannot stand without the resource, detach the canvas nodes that show
    it or them, and record what went (the resource's own deletion is its service's)."""
    organization_id = principal.organization_id
    gone_queries = [resource_id] if noun == "query" else []
    if noun == "datasource":
        gone_queries = [
            row["id"] for row in crud.named_by(QUERIES, organization_id, "datasource_id", [resource_id])
        ]
        crud.delete_many(QUERIES, organization_id, gone_queries)
    for kind, collection in DELETED.items():
        ids = [dependent.id for dependent in dependents if dependent.kind == kind]
        if ids:
            crud.delete_many(collection, organization_id, ids)
    if gone_queries:
        crud.drop_options_from(QUERIES, "parameters", organization_id, gone_queries)
        crud.drop_options_from(DASHBOARDS, "filters", organization_id, gone_queries)
    gone = [
        resource_id,
        *gone_queries,
        *(dependent.id for dependent in dependents if dependent.kind in DELETED),
    ]
    canvases.detach(organization_id, gone)
    # Tiles go with their visualizations through a foreign key, which leaves the dashboard's own row (its
    # version) untouched: mark each dashboard changed so a client holding its old ETag must re-read it.
    dashboards = [dependent.id for dependent in dependents if dependent.kind == "dashboard"]
    crud.touch(DASHBOARDS, organization_id, dashboards)
    audit.record_by(
        principal,
        f"{noun}.deleted_with_dependents",
        target_type=noun,
        target_id=resource_id,
        metadata={
            "dependents": [
                {"kind": dependent.kind, "id": str(dependent.id), "name": dependent.name}
                for dependent in dependents
            ]
        },
    )


class UsedByOthers:
    """A resource service's hooks (ResourceService.dependents, .remove_dependents) for a resource others
    use: `find_dependents(organization_id, resource_id)` says who."""

    noun: str
    find_dependents: Callable[[UUID, UUID], list[Dependent]]
    cascades = True

    def dependents(self, principal: Principal, current: dict[str, Any]) -> list[Dependent]:
        return self.find_dependents(principal.organization_id, current["id"])

    def remove_dependents(
        self, principal: Principal, current: dict[str, Any], found: list[Dependent]
    ) -> None:
        remove(principal, self.noun, current["id"], found)
