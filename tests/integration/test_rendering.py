"""Charts drawn through the render routes, looked at: PNGs decode at the requested size and show the data
(bar heights measured on the image), SVGs carry their axis titles and legend entries, dashboards come as
one PNG or PDF page, and every refusal is a 4xx in the error envelope."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pytest
from PIL import Image

from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query, saved_query

aws = runs_support.aws
postgres_database = runs_support.postgres_database

AMOUNTS_SQL = "SELECT label, amount FROM (VALUES ('a', 10), ('b', 20), ('c', 40)) AS t(label, amount)"
SALES_SQL = (
    "SELECT make_date(2026, month, 1) AS month, region, month * 100 + length(region) AS revenue"
    " FROM generate_series(1, 6) AS month, unnest(ARRAY['emea', 'amer']) AS region"
)
MANY_SQL = "SELECT n, n % 97 AS value FROM generate_series(1, 100000) AS n"
BAR_COLOR = (0x4C, 0x78, 0xA8)
OPTIONS = {
    "table": {},
    "line": {"x": "month", "y": [{"column": "revenue", "label": "Revenue"}], "group_by": "region"},
    "bar": {"x": "region", "y": [{"column": "revenue"}], "aggregation": "sum"},
    "area": {"x": "month", "y": [{"column": "revenue"}], "group_by": "region", "stacked": True},
    "pie": {"label": "region", "value": "revenue"},
    "scatter": {"x": "month", "y": [{"column": "revenue"}]},
    "counter": {"value": "revenue", "aggregation": "sum", "title": "Revenue"},
    "pivot": {"rows": ["region"], "columns": ["month"], "values": ["revenue"]},
}


def ran_query(api: Any, token: str, database: str, aws: str, sql: str) -> str:
    made = saved_query(api, token, database, sql, [])
    assert made.status == 201, made.body
    query_id: str = made.json()["id"]
    assert run_query(api, token, query_id).status == 202
    deliver(aws)
    return query_id


def visualization(
    api: Any, token: str, query_id: str, kind: str, options: dict[str, Any], name: str | None = None
) -> str:
    made = api.post(
        "/api/v1/visualizations",
        json_body={"name": name or f"A {kind}", "query_id": query_id, "type": kind, "options": options},
        token=token,
    )
    assert made.status == 201, made.body
    return str(made.json()["id"])


def render(api: Any, token: str, visualization_id: str, accept: str | None = None, **query: Any) -> Any:
    return api.get(
        f"/api/v1/visualizations/{visualization_id}/render",
        token=token,
        query={name: str(value) for name, value in query.items()},
        headers={"Accept": accept} if accept else None,
    )


def picture(response: Any) -> Image.Image:
    assert response.status == 200, response.body
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image.convert("RGB")


def colors(image: Image.Image) -> Counter[tuple[int, int, int]]:
    return Counter(image.get_flattened_data())


def bar_heights(image: Image.Image, color: tuple[int, int, int]) -> list[int]:
    """The height in pixels of each bar of `color`, left to right: its tallest column of that colour."""
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    columns = [sum(1 for y in range(height) if pixels[x, y] == color) for x in range(width)]
    bars: list[int] = []
    inside = False
    for count in columns:
        if count and not inside:
            bars.append(count)
        elif count:
            bars[-1] = max(bars[-1], count)
        inside = bool(count)
    return bars


def test_a_bar_chart_of_known_values_has_bars_of_proportional_height(
    api: Any, register: Any, aws: str, postgres_database: str
) -> None:
    admin = register()
    query_id = ran_query(api, admin.access_token, postgres_database, aws, AMOUNTS_SQL)
    bar = visualization(api, admin.access_token, query_id, "bar", {"x": "label", "y": [{"column": "amount"}]})

    drawn = render(api, admin.access_token, bar, "image/png", format="png", width=500, height=400)

    assert drawn.header("Content-Type") == "image/png", drawn.body
    assert drawn.header("Loupe-Run-Id")
    image = picture(drawn)
    assert image.size == (500, 400)
    heights = bar_heights(image, BAR_COLOR)
    assert len(heights) == 3, heights
    # 10 : 20 : 40, measured within a pixel or two of antialiasing.
    assert heights[1] / heights[0] == pytest.approx(2, rel=0.05)
    assert heights[2] / heights[0] == pytest.approx(4, rel=0.05)

    sharp = picture(
        render(api, admin.access_token, bar, "image/png", format="png", width=500, height=400, scale=2)
    )
    assert sharp.size == (1000, 800)


def test_every_type_draws_a_picture_that_is_not_blank_and_an_svg_with_its_titles_and_legend(
    api: Any, register: Any, aws: str, postgres_database: str
) -> None:
    admin = register()
    query_id = ran_query(api, admin.access_token, postgres_database, aws, SALES_SQL)
    for kind, options in OPTIONS.items():
        shown = visualization(api, admin.access_token, query_id, kind, options)
        image = picture(
            render(api, admin.access_token, shown, "image/png", format="png", width=640, height=360)
        )
        assert image.size == (640, 360), kind
        counted = colors(image)
        background = counted.most_common(1)[0][1]
        assert background < 640 * 360 * 0.98, f"{kind} is blank"
        assert len(counted) > 20, f"{kind} draws almost nothing"

        svg = render(api, admin.access_token, shown, format="svg", width=640, height=360)
        assert svg.status == 200, svg.body
        assert svg.header("Content-Type") == "image/svg+xml"
        assert svg.body.startswith("<svg")
        assert f"A {kind}" in svg.body

    line = visualization(api, admin.access_token, query_id, "line", OPTIONS["line"])
    svg = render(api, admin.access_token, line, format="svg").body
    # The x axis title, the y axis title (the series' label) and a legend entry per region.
    for text in (">month<", ">Revenue<", ">emea<", ">amer<"):
        assert text in svg, text

    spec = render(api, admin.access_token, line, format="vega-lite")
    assert spec.header("Content-Type") == "application/json"
    body = spec.json()
    assert body["$schema"].startswith("https://vega.github.io/schema/vega-lite/v5")
    assert len(body["data"]["values"]) == 12
    assert {value["series"] for value in body["data"]["values"]} == {"emea", "amer"}


def test_a_large_result_is_sampled_by_the_documented_rule_and_says_so(
    api: Any, register: Any, aws: str, postgres_database: str
) -> None:
    admin = register()
    query_id = ran_query(api, admin.access_token, postgres_database, aws, MANY_SQL)
    line = visualization(api, admin.access_token, query_id, "line", {"x": "n", "y": [{"column": "value"}]})
    spec = render(api, admin.access_token, line, format="vega-lite").json()
    values = spec["data"]["values"]
    assert len(values) == 5000
    assert [value["x"] for value in values[:3]] == [1, 21, 41]
    assert spec["title"]["subtitle"] == "every 20th of 100,000 rows drawn"

    summed = visualization(
        api,
        admin.access_token,
        query_id,
        "bar",
        {"x": "value", "y": [{"column": "n"}], "aggregation": "count"},
    )
    counted = render(api, admin.access_token, summed, format="vega-lite").json()
    assert len(counted["data"]["values"]) == 97
    assert sum(value["value"] for value in counted["data"]["values"]) == 100000
    assert "subtitle" not in counted["title"]
    image = picture(render(api, admin.access_token, summed, "image/png", format="png"))
    assert image.size == (800, 450)


def test_refusals_are_4xx_in_the_error_envelope(
    api: Any, register: Any, aws: str, postgres_database: str
) -> None:
    admin, stranger = register(), register()
    query_id = ran_query(api, admin.access_token, postgres_database, aws, AMOUNTS_SQL)
    bar = visualization(api, admin.access_token, query_id, "bar", {"x": "label", "y": [{"column": "amount"}]})

    def refused(response: Any, status: int, code: str) -> None:
        assert response.status == status, response.body
        assert response.json()["error"]["code"] == code

    # A PNG to a client that does not ask for one first would arrive as base64 text through API Gateway.
    refused(render(api, admin.access_token, bar, format="png"), 406, "not_acceptable")
    refused(render(api, admin.access_token, bar, "text/html, image/png", format="png"), 406, "not_acceptable")
    refused(render(api, stranger.access_token, bar), 404, "not_found")
    refused(render(api, admin.access_token, bar, format="gif"), 422, "validation_error")
    refused(render(api, admin.access_token, bar, width=50), 422, "validation_error")
    refused(
        render(api, admin.access_token, bar, "image/png", format="png", width=4000, height=4000, scale=2),
        422,
        "validation_error",
    )
    refused(render(api, admin.access_token, bar, run_id="not-a-uuid"), 422, "validation_error")

    other = ran_query(api, admin.access_token, postgres_database, aws, SALES_SQL)
    other_run = api.get("/api/v1/runs", token=admin.access_token, query={"query_id": other}).json()["items"][
        0
    ]
    refused(render(api, admin.access_token, bar, run_id=other_run["id"]), 422, "validation_error")

    never_ran = saved_query(api, admin.access_token, postgres_database, AMOUNTS_SQL + " WHERE amount > 0", [])
    waiting = visualization(api, admin.access_token, never_ran.json()["id"], "table", {})
    refused(render(api, admin.access_token, waiting), 409, "conflict")

    renamed = visualization(
        api, admin.access_token, query_id, "bar", {"x": "name", "y": [{"column": "amount"}]}
    )
    refused(render(api, admin.access_token, renamed), 409, "conflict")


def test_a_dashboard_renders_as_one_png_and_one_pdf_page_laid_out_by_its_grid(
    api: Any, register: Any, aws: str, postgres_database: str
) -> None:
    admin = register()
    token = admin.access_token
    query_id = ran_query(api, token, postgres_database, aws, AMOUNTS_SQL)
    bar = visualization(api, token, query_id, "bar", {"x": "label", "y": [{"column": "amount"}]})
    never_ran = saved_query(api, token, postgres_database, AMOUNTS_SQL + " WHERE amount > 0", [])
    waiting = visualization(api, token, never_ran.json()["id"], "table", {})
    made = api.post(
        "/api/v1/dashboards",
        json_body={
            "name": "Amounts",
            "tiles": [
                {"visualization_id": bar, "x": 0, "y": 0, "w": 6, "h": 5},
                {"visualization_id": waiting, "x": 6, "y": 0, "w": 6, "h": 5},
                {"text": "# Notes\nAmounts by **label**.", "x": 0, "y": 5, "w": 12, "h": 2},
            ],
        },
        token=token,
    )
    assert made.status == 201, made.body
    path = f"/api/v1/dashboards/{made.json()['id']}/render"

    page = picture(api.get(path, token=token, headers={"Accept": "image/png"}))
    assert page.size == (1200, 64 + 7 * 60 + 16)
    # The bar tile draws three bars of the data's proportions in its half of the page.
    heights = bar_heights(page.crop((0, 0, 600, page.size[1])), BAR_COLOR)
    assert len(heights) == 3
    assert heights[2] / heights[0] == pytest.approx(4, rel=0.08)

    pdf = api.post(path, json_body={"format": "pdf"}, token=token, headers={"Accept": "application/pdf"})
    assert pdf.status == 200, pdf.body
    assert pdf.header("Content-Type") == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")

    refused = api.get(path, token=token, query={"format": "pdf"})
    assert refused.status == 406
    assert refused.json()["error"]["code"] == "not_acceptable"
    assert (
        api.post(
            path, json_body={"filters": {"nope": 1}}, token=token, headers={"Accept": "image/png"}
        ).status
        == 422
    )
    missing = path.replace(made.json()["id"], "00000000-0000-4000-8000-000000000000")
    assert (
        api.get(missing, token=token, headers={"Accept": "image/png"}).json()["error"]["code"] == "not_found"
    )


def test_a_guest_renders_its_resource_with_its_locked_values_and_nothing_else(
    api: Any, register: Any, aws: str, postgres_database: str
) -> None:
    admin = register()
    token = admin.access_token
    query_id = ran_query(api, token, postgres_database, aws, AMOUNTS_SQL)
    bar = visualization(api, token, query_id, "bar", {"x": "label", "y": [{"column": "amount"}]})
    minted = api.post(
        "/api/v1/embed-tokens",
        json_body={
            "resource": {"type": "visualization", "id": bar},
            "allowed_origins": ["https://app.example"],
        },
        token=token,
    )
    assert minted.status == 201, minted.body
    guest = {"Authorization": f"Bearer {minted.json()['token']}", "Origin": "https://app.example"}

    drawn = api.get("/api/v1/embed/render", query={"width": "800"}, headers={**guest, "Accept": "image/png"})
    assert drawn.header("Access-Control-Allow-Origin") == "https://app.example"
    assert drawn.header("Content-Disposition") == f'inline; filename="visualization-{bar}.png"'
    page = picture(drawn)
    assert page.size[0] == 800
    heights = bar_heights(page, BAR_COLOR)
    assert len(heights) == 3
    assert heights[2] / heights[0] == pytest.approx(4, rel=0.08)
    pdf = api.post(
        "/api/v1/embed/render", json_body={"format": "pdf"}, headers={**guest, "Accept": "application/pdf"}
    )
    assert pdf.status == 200, pdf.body
    assert pdf.content.startswith(b"%PDF-")

    # A filter that is not the guest's to change, the wrong Accept, a session or no token: refused.
    changed = api.post(
        "/api/v1/embed/render", json_body={"filters": {"min": 1}}, headers={**guest, "Accept": "image/png"}
    )
    assert changed.status == 422, changed.body
    assert changed.json()["error"]["details"][0]["field"] == "body.filters.min"
    assert api.get("/api/v1/embed/render", headers=guest).json()["error"]["code"] == "not_acceptable"
    assert api.get("/api/v1/embed/render", token=token, headers={"Accept": "image/png"}).status == 401
    assert api.get("/api/v1/embed/render", headers={"Accept": "image/png"}).status == 401
    preflight = api.request("OPTIONS", "/api/v1/embed/render", headers={"Origin": "https://app.example"})
    assert preflight.status == 204
    assert "Authorization" in preflight.header("Access-Control-Allow-Headers")

    revoked = api.delete(f"/api/v1/embed-tokens/{minted.json()['jti']}", token=token)
    assert revoked.status == 204
    assert api.get("/api/v1/embed/render", headers={**guest, "Accept": "image/png"}).status == 401


def test_a_guests_query_is_drawn_as_its_result_in_a_table(
    api: Any, register: Any, aws: str, postgres_database: str
) -> None:
    admin = register()
    token = admin.access_token
    query_id = ran_query(api, token, postgres_database, aws, AMOUNTS_SQL)
    never_ran = saved_query(api, token, postgres_database, AMOUNTS_SQL + " WHERE amount > 0", [])
    # Named as the query is: the page's title is the shown resource's name.
    as_table = visualization(api, token, query_id, "table", {}, name="q")

    def guest_page(resource_type: str, resource_id: str) -> Image.Image:
        minted = api.post(
            "/api/v1/embed-tokens",
            json_body={"resource": {"type": resource_type, "id": resource_id}},
            token=token,
        )
        assert minted.status == 201, minted.body
        guest = {"Authorization": f"Bearer {minted.json()['token']}", "Accept": "image/png"}
        return picture(api.get("/api/v1/embed/render", headers=guest))

    # The query's result is the picture a table visualization of it with default options draws.
    drawn = guest_page("query", query_id)
    assert drawn.tobytes() == guest_page("visualization", as_table).tobytes()
    # Not the place of a tile without a result: that has only a message in it.
    waiting = guest_page("query", never_ran.json()["id"])
    assert drawn.size == waiting.size
    assert len(colors(drawn)) > len(colors(waiting))
