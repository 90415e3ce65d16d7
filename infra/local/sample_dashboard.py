"""The demo organization's "Sales explorer" dashboard, created once through the API on the sample data:
three tiles, a relative date range, a multi-value country dropdown and a city dropdown that cascades
from it, ready to draw with `GET /dashboards/{id}/data`; and its weekly report, mailed to the demo
user's outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from loupe.api.prefix import API_PREFIX

SAMPLE_DASHBOARD = "Sales explorer"
DEMO_INBOX = "Demo inbox"
SAMPLE_REPORT = "Sales explorer every Monday"
# (method, target, body) -> the answer's JSON; the caller signs each request in as the demo admin.
ApiCall = Callable[[str, str, object], dict[str, Any]]

PERIOD: dict[str, Any] = {"name": "period", "type": "date_range", "default": {"preset": "this_year"}}
COUNTRIES: dict[str, Any] = {
    "name": "countries",
    "type": "text",
    "multi": True,
    "default": ["US", "GB", "DE"],
}
CITY: dict[str, Any] = {"name": "city", "type": "text", "default": "New York"}


@dataclass(frozen=True)
class SampleTile:
    name: str
    sql: str
    parameters: list[dict[str, Any]]
    drawing: dict[str, Any]


TILES = (
    SampleTile(
        "Revenue by month",
        "SELECT date_trunc('month', o.ordered_at)::date AS month, sum(o.total) AS revenue FROM orders o"
        " WHERE o.ordered_at >= {{ period.from }} AND o.ordered_at < {{ period.to }}"
        " AND o.shipping_country IN {{ countries }} GROUP BY 1 ORDER BY 1",
        [PERIOD, COUNTRIES],
        {"type": "line", "options": {"x": "month", "y": [{"column": "revenue", "label": "Revenue"}]}},
    ),
    SampleTile(
        "Orders by channel",
        "SELECT o.channel, count(*) AS orders FROM orders o"
        " WHERE o.ordered_at >= {{ period.from }} AND o.ordered_at < {{ period.to }}"
        " AND o.shipping_country IN {{ countries }} GROUP BY 1 ORDER BY 2 DESC",
        [PERIOD, COUNTRIES],
        {"type": "pie", "options": {"label": "channel", "value": "orders"}},
    ),
    SampleTile(
        "A city's orders by month",
        "SELECT date_trunc('month', o.ordered_at)::date AS month, count(*) AS orders FROM orders o"
        " JOIN customers c ON c.id = o.customer_id"
        " WHERE o.ordered_at >= {{ period.from }} AND o.ordered_at < {{ period.to }} AND c.city = {{ city }}"
        " GROUP BY 1 ORDER BY 1",
        [PERIOD, CITY],
        {"type": "bar", "options": {"x": "month", "y": [{"column": "orders", "label": "Orders"}]}},
    ),
)


def ensure(call: ApiCall, datasource_id: str, inbox: str) -> bool:
    """Create the dashboard (and its queries and visualizations), a mail destination to `inbox` and a
    weekly report of the dashboard to it, unless the organization has a dashboard of that name; True when
    created now. The countries' options query is run at once, so the dashboard draws."""
    listed = call("GET", f"{API_PREFIX}/dashboards?" + urlencode({"q": SAMPLE_DASHBOARD}), None)
    if any(item["name"] == SAMPLE_DASHBOARD for item in listed["items"]):
        return False

    def query(name: str, sql: str, parameters: list[dict[str, Any]]) -> str:
        body = {"name": name, "datasource_id": datasource_id, "sql": sql, "parameters": parameters}
        return str(call("POST", f"{API_PREFIX}/queries", body)["id"])

    countries = query("Shipping countries", "SELECT DISTINCT shipping_country FROM orders ORDER BY 1", [])
    cities = query(
        "Cities of countries",
        "SELECT DISTINCT city FROM customers WHERE country IN {{ countries }} ORDER BY 1",
        [{"name": "countries", "type": "text", "multi": True, "required": True}],
    )
    tiles = []
    for index, sample in enumerate(TILES):
        visualization = call(
            "POST",
            f"{API_PREFIX}/visualizations",
            {
                "name": sample.name,
                "query_id": query(sample.name, sample.sql, sample.parameters),
                **sample.drawing,
            },
        )
        mappings = {parameter["name"]: parameter["name"] for parameter in sample.parameters}
        tiles.append(
            {
                "visualization_id": visualization["id"],
                "x": 6 * (index % 2),
                "y": 6 * (index // 2),
                "w": 6,
                "h": 6,
            }
            | {"param_mappings": mappings}
        )
    filters = [
        PERIOD,
        {**COUNTRIES, "options_query": {"query_id": countries}},
        {**CITY, "options_query": {"query_id": cities, "parameters": {"countries": "countries"}}},
    ]
    dashboard = call(
        "POST", f"{API_PREFIX}/dashboards", {"name": SAMPLE_DASHBOARD, "filters": filters, "tiles": tiles}
    )
    call("POST", f"{API_PREFIX}/queries/{countries}/runs", {})
    destination = call(
        "POST", f"{API_PREFIX}/destinations", {"name": DEMO_INBOX, "type": "email", "to": [inbox]}
    )
    report = {
        "name": SAMPLE_REPORT,
        "resource": {"type": "dashboard", "id": dashboard["id"]},
        "cron": "0 8 * * 1",
        "formats": ["png", "csv"],
        "destination_ids": [destination["id"]],
    }
    call("POST", f"{API_PREFIX}/subscriptions", report)
    return True
