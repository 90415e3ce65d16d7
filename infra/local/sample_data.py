"""The local stack's read-only sample database `loupe_sample`: two years of a small web shop's data,
generated deterministically and loaded with COPY, readable only by the role `loupe_sample_reader`."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

Row = tuple[Any, ...]
T = TypeVar("T")

SAMPLE_DATABASE = "loupe_sample"
READER_ROLE = "loupe_sample_reader"
SEED = 42
# A fixed window keeps the data identical on every machine and every day it is generated.
PERIOD_START = datetime(2024, 11, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 11, 1, tzinfo=UTC)

CUSTOMERS = 2_000
PRODUCTS = 200
ORDERS = 20_000
EVENTS = 50_000

SCHEMA = """
CREATE TABLE customers (
    id integer PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text NOT NULL UNIQUE,
    country text NOT NULL,
    city text NOT NULL,
    segment text NOT NULL,
    acquisition_channel text NOT NULL,
    signed_up_at timestamptz NOT NULL
);
CREATE TABLE products (
    id integer PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    category text NOT NULL,
    price numeric(10, 2) NOT NULL,
    cost numeric(10, 2) NOT NULL,
    launched_at date NOT NULL,
    discontinued boolean NOT NULL
);
CREATE TABLE orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers,
    ordered_at timestamptz NOT NULL,
    status text NOT NULL,
    channel text NOT NULL,
    payment_method text NOT NULL,
    shipping_country text NOT NULL,
    subtotal numeric(12, 2) NOT NULL,
    discount numeric(12, 2) NOT NULL,
    shipping numeric(12, 2) NOT NULL,
    total numeric(12, 2) NOT NULL
);
CREATE TABLE order_items (
    id integer PRIMARY KEY,
    order_id integer NOT NULL REFERENCES orders,
    product_id integer NOT NULL REFERENCES products,
    quantity integer NOT NULL,
    unit_price numeric(10, 2) NOT NULL,
    discount numeric(10, 2) NOT NULL
);
CREATE TABLE events (
    id bigint PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    session_id uuid NOT NULL,
    customer_id integer REFERENCES customers,
    event_type text NOT NULL,
    page text NOT NULL,
    product_id integer REFERENCES products,
    device text NOT NULL,
    country text NOT NULL,
    properties jsonb NOT NULL
);
COMMENT ON TABLE customers IS 'Shop customers, one row per account';
COMMENT ON TABLE products IS 'The catalogue; price and cost in USD';
COMMENT ON TABLE orders IS 'One row per checkout; total = subtotal - discount + shipping';
COMMENT ON TABLE order_items IS 'Order lines';
COMMENT ON TABLE events IS 'Web and app analytics events; customer_id is null for anonymous visitors';
"""

INDEXES = """
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX orders_ordered_at_idx ON orders (ordered_at);
CREATE INDEX order_items_order_id_idx ON order_items (order_id);
CREATE INDEX order_items_product_id_idx ON order_items (product_id);
CREATE INDEX events_occurred_at_idx ON events (occurred_at);
CREATE INDEX events_customer_id_idx ON events (customer_id);
"""


class Weighted(Generic[T]):
    """A weighted choice with its cumulative weights summed once (random.choices sums them on every call)."""

    def __init__(self, options: Iterable[tuple[T, float]]) -> None:
        pairs = list(options)
        self.values = [value for value, _ in pairs]
        self.cumulative = list(itertools.accumulate(weight for _, weight in pairs))

    def pick(self, rng: random.Random) -> T:
        drawn = bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])
        return self.values[min(drawn, len(self.values) - 1)]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Emma Liam Olivia Noah Ava Elijah Sophia Lucas Mia Mateo Amelia Leo Isabella Hugo Chloe Arjun Aisha "
    "Kenji Yuki Lena Finn Clara Jonas Ines Pablo Lucia Marco Giulia Sven Freya Omar Layla Ravi Priya Chen "
    "Mei Tomas Ana Felix Nora Oscar Alice Ethan Grace Daniel Zoe Samuel Ella Adam Maya"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Martinez Lopez Wilson Anderson Taylor Thomas "
    "Moore Martin Lee Walker Hall Young King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell "
    "Muller Schmidt Schneider Fischer Weber Dubois Laurent Bernard Rossi Russo Bianchi Fernandez Sanchez "
    "Silva Santos Tanaka Suzuki Sato Kumar Sharma Patel Jansen DeVries Nilsson Larsen"
)
COUNTRIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "US": (40, ("New York", "Los Angeles", "Chicago", "Houston", "Seattle", "Austin", "Boston", "Denver")),
    "GB": (12, ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol")),
    "DE": (10, ("Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt")),
    "FR": (8, ("Paris", "Lyon", "Marseille", "Toulouse", "Lille")),
    "CA": (7, ("Toronto", "Vancouver", "Montreal", "Calgary")),
    "AU": (5, ("Sydney", "Melbourne", "Brisbane", "Perth")),
    "NL": (4, ("Amsterdam", "Rotterdam", "Utrecht")),
    "ES": (4, ("Madrid", "Barcelona", "Valencia", "Seville")),
    "IT": (3, ("Rome", "Milan", "Turin", "Naples")),
    "BR": (3, ("Sao Paulo", "Rio de Janeiro", "Belo Horizonte")),
    "JP": (2, ("Tokyo", "Osaka", "Yokohama")),
    "IN": (2, ("Bengaluru", "Mumbai", "Delhi", "Pune")),
}
SEGMENTS = Weighted((("consumer", 70), ("small_business", 22), ("enterprise", 8)))
ACQUISITION = Weighted(
    (("organic", 35), ("paid_search", 25), ("social", 18), ("referral", 12), ("email", 10))
)
# category: (typical price, nouns)
CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "Electronics": (180.0, ("Headphones", "Speaker", "Charger", "Monitor", "Keyboard", "Webcam", "Router")),
    "Home & Kitchen": (60.0, ("Kettle", "Blender", "Pan", "Knife Set", "Lamp", "Throw", "Coffee Grinder")),
    "Books": (18.0, ("Cookbook", "Novel", "Atlas", "Field Guide", "Notebook", "Planner")),
    "Clothing": (45.0, ("Jacket", "Sweater", "T-Shirt", "Jeans", "Sneakers", "Scarf", "Rain Coat")),
    "Sports & Outdoors": (70.0, ("Yoga Mat", "Tent", "Water Bottle", "Backpack", "Bike Light", "Dumbbells")),
    "Beauty": (25.0, ("Serum", "Face Cream", "Shampoo", "Perfume", "Lip Balm", "Sunscreen")),
    "Toys & Games": (30.0, ("Puzzle", "Board Game", "Building Set", "Plush Bear", "Card Game", "Kite")),
    "Grocery": (12.0, ("Coffee Beans", "Green Tea", "Olive Oil", "Dark Chocolate", "Granola", "Honey")),
}
ADJECTIVES = _words(
    "Classic Premium Compact Everyday Pro Eco Deluxe Smart Essential Urban Nordic Trail Studio Pure Vintage"
)
ORDER_STATUS = Weighted((("delivered", 84), ("cancelled", 7), ("returned", 6), ("shipped", 3)))
CHANNELS = Weighted((("web", 55), ("mobile_app", 35), ("marketplace", 10)))
PAYMENTS = Weighted((("card", 62), ("paypal", 20), ("apple_pay", 12), ("bank_transfer", 6)))
EVENT_TYPES = Weighted(
    (
        ("page_view", 52),
        ("product_view", 22),
        ("search", 9),
        ("add_to_cart", 10),
        ("checkout_started", 4),
        ("signup", 1),
        ("purchase", 2),
    )
)
PAGES = ("/", "/deals", "/new", "/about", "/help", "/blog", "/account", "/cart")
DEVICES = Weighted((("desktop", 46), ("mobile", 47), ("tablet", 7)))
REFERRERS = ("google", "direct", "newsletter", "instagram", "partner", "bing")
SEARCHES = ("gift", "sale", "coffee", "running shoes", "headphones", "tent", "puzzle", "usb c", "lamp")
# Weekly and daily shape of shopping traffic (Monday first; hour 0..23 UTC).
WEEKDAY_WEIGHT = (0.95, 0.9, 0.92, 0.97, 1.05, 1.15, 1.06)
HOURS = Weighted(enumerate((2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 8, 9, 8, 8, 8, 8, 9, 10, 11, 11, 9, 6, 4)))
COUNTRY = Weighted((country, weight) for country, (weight, _) in COUNTRIES.items())
LINES_PER_ORDER = Weighted(zip(range(1, 7), (30, 28, 20, 12, 6, 4), strict=True))
QUANTITY = Weighted(zip(range(1, 6), (70, 18, 7, 3, 2), strict=True))


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _demand(moment: datetime) -> float:
    """Relative order volume: growth over the period, the November-December peak, a summer dip."""
    progress = (moment - PERIOD_START) / (PERIOD_END - PERIOD_START)
    season = {11: 1.6, 12: 1.8, 1: 0.85, 7: 0.9, 8: 0.85}.get(moment.month, 1.0)
    return (0.6 + 0.8 * progress) * season * WEEKDAY_WEIGHT[moment.weekday()]


class _Generator:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)  # noqa: S311  # reproducible sample data, not secrets
        self.span_seconds = (PERIOD_END - PERIOD_START).total_seconds()

    def moment(self) -> datetime:
        """A time in the period, following the demand curve and the hour-of-day profile."""
        rng = self.rng
        while True:
            day = PERIOD_START + timedelta(days=rng.randrange(int(self.span_seconds // 86_400)))
            # Rejection sampling: 3.0 bounds _demand over the whole period.
            if rng.random() * 3.0 < _demand(day):
                return day + timedelta(hours=HOURS.pick(rng), seconds=rng.randrange(3600))

    def customers(self) -> list[Row]:
        rng = self.rng
        rows = []
        for _ in range(CUSTOMERS):
            # One in six signed up before the period; the others arrive as the shop grows.
            if rng.random() < 1 / 6:
                signed_up = PERIOD_START - timedelta(seconds=rng.randrange(365 * 86_400))
            else:
                signed_up = PERIOD_START + timedelta(seconds=self.span_seconds * math.sqrt(rng.random()))
            country = COUNTRY.pick(rng)
            rows.append(
                (
                    rng.choice(FIRST_NAMES),
                    rng.choice(LAST_NAMES),
                    country,
                    rng.choice(COUNTRIES[country][1]),
                    SEGMENTS.pick(rng),
                    ACQUISITION.pick(rng),
                    signed_up,
                )
            )
        rows.sort(key=lambda row: row[-1])
        return [
            (number, first, last, f"{first}.{last}.{number}@example.com".lower(), *rest)
            for number, (first, last, *rest) in enumerate(rows, start=1)
        ]

    def products(self) -> list[Row]:
        rng = self.rng
        rows = []
        categories = list(CATEGORIES)
        for number in range(1, PRODUCTS + 1):
            category = categories[(number - 1) % len(categories)]
            typical, nouns = CATEGORIES[category]
            price = max(2.99, round(typical * rng.lognormvariate(0, 0.45)) - 0.01)
            launched = (PERIOD_START - timedelta(days=rng.randrange(30, 700))).date()
            rows.append(
                (
                    number,
                    f"SKU-{number:05d}",
                    f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)}",
                    category,
                    _money(price),
                    _money(price * rng.uniform(0.35, 0.7)),
                    launched,
                    rng.random() < 0.06,
                )
            )
        return rows

    def orders(self, customers: list[Row], products: list[Row]) -> tuple[list[Row], list[Row]]:
        rng = self.rng
        signups = [customer[-1] for customer in customers]
        # A few loyal customers order far more often than most (a long tail, as in real shops).
        loyalty = [rng.lognormvariate(0, 0.6) for _ in customers]
        cumulative = [0.0]
        for weight in loyalty:
            cumulative.append(cumulative[-1] + weight)
        ranks = list(range(len(products)))
        rng.shuffle(ranks)
        popular = Weighted((index, 1 / (rank + 1) ** 0.8) for index, rank in enumerate(ranks))
        moments = sorted(self.moment() for _ in range(ORDERS))
        orders: list[Row] = []
        items: list[Row] = []
        for order_id, ordered_at in enumerate(moments, start=1):
            eligible = max(1, bisect.bisect_right(signups, ordered_at))
            drawn = bisect.bisect_right(cumulative, rng.random() * cumulative[eligible]) - 1
            customer = customers[min(eligible - 1, drawn)]
            lines = LINES_PER_ORDER.pick(rng)
            chosen: set[int] = set()
            while len(chosen) < lines:
                chosen.add(popular.pick(rng))
            subtotal = Decimal(0)
            for product_index in sorted(chosen):
                product = products[product_index]
                quantity = QUANTITY.pick(rng)
                unit_price: Decimal = product[4]
                line_discount = (
                    _money(float(unit_price) * quantity * 0.15) if rng.random() < 0.12 else Decimal(0)
                )
                items.append((len(items) + 1, order_id, product[0], quantity, unit_price, line_discount))
                subtotal += unit_price * quantity - line_discount
            discount = _money(float(subtotal) * 0.1) if rng.random() < 0.08 else Decimal(0)
            shipping = Decimal(0) if subtotal >= 50 else Decimal("5.99")
            # Orders of the last days are still on their way.
            recent = PERIOD_END - ordered_at < timedelta(days=4)
            status = "shipped" if recent else ORDER_STATUS.pick(rng)
            orders.append(
                (
                    order_id,
                    customer[0],
                    ordered_at,
                    status,
                    CHANNELS.pick(rng),
                    PAYMENTS.pick(rng),
                    customer[4],
                    subtotal,
                    discount,
                    shipping,
                    subtotal - discount + shipping,
                )
            )
        return orders, items

    def events(self, customers: list[Row], products: list[Row]) -> list[Row]:
        rng = self.rng
        moments = sorted(self.moment() for _ in range(EVENTS))
        rows: list[Row] = []
        session = uuid.UUID(int=rng.getrandbits(128), version=4)
        customer: Row | None = None
        for event_id, occurred_at in enumerate(moments, start=1):
            if rng.random() < 0.3:  # a new visit
                session = uuid.UUID(int=rng.getrandbits(128), version=4)
                customer = rng.choice(customers) if rng.random() < 0.7 else None
            if customer is not None and customer[-1] > occurred_at:
                customer = None
            event_type = EVENT_TYPES.pick(rng)
            product: Row | None = None
            properties: dict[str, Any] = {}
            if event_type in ("product_view", "add_to_cart"):
                product = rng.choice(products)
                page = f"/products/{product[1].lower()}"
            elif event_type == "search":
                page = "/search"
                properties["query"] = rng.choice(SEARCHES)
            elif event_type in ("checkout_started", "purchase"):
                page = "/checkout"
            elif event_type == "signup":
                page = "/signup"
            else:
                page = rng.choice(PAGES)
                properties["referrer"] = rng.choice(REFERRERS)
            rows.append(
                (
                    event_id,
                    occurred_at,
                    session,
                    customer[0] if customer else None,
                    event_type,
                    page,
                    product[0] if product else None,
                    DEVICES.pick(rng),
                    customer[4] if customer else COUNTRY.pick(rng),
                    json.dumps(properties),
                )
            )
        return rows


def _copy(cursor: psycopg.Cursor[Any], table: str, rows: Iterable[Sequence[Any]]) -> None:
    with cursor.copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))) as copy:
        for row in rows:
            copy.write_row(row)


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(database)))


def with_login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:****@{host}"))


def generate(seed: int = SEED) -> dict[str, list[Row]]:
    """Every table's rows, in load order; the same seed always gives the same data."""
    generator = _Generator(seed)
    customers = generator.customers()
    products = generator.products()
    orders, items = generator.orders(customers, products)
    events = generator.events(customers, products)
    return {
        "customers": customers,
        "products": products,
        "orders": orders,
        "order_items": items,
        "events": events,
    }


def _load(url: str) -> None:
    tables = generate()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        # One transaction: either every table is there, filled, or none is.
        cursor.execute(SCHEMA)
        for table, rows in tables.items():
            _copy(cursor, table, rows)
        cursor.execute(INDEXES)
        cursor.execute("ANALYZE")


def _is_loaded(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('public.events') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _grant_reader(
    admin: psycopg.Connection[Any], sample_url: str, reader_password: str, metadata: str
) -> None:
    reader = sql.Identifier(READER_ROLE)
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)).fetchone()
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    admin.execute(
        sql.SQL(
            "{} {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 20 PASSWORD {}"
        ).format(verb, reader, sql.Literal(reader_password))
    )
    admin.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(reader))
    admin.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = '60s'").format(reader))
    sample = sql.Identifier(SAMPLE_DATABASE)
    admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sample))
    admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sample, reader))
    metadata_exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (metadata,)).fetchone()
    if metadata_exists:
        admin.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC, {}").format(sql.Identifier(metadata), reader)
        )
    with psycopg.connect(sample_url, autocommit=True) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(reader))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(reader))


def ensure_sample_database(server_url: str, reader_password: str, *, metadata_database: str = "loupe") -> str:
    """Create and fill `loupe_sample` once, (re)grant its reader role; return the reader's URL.

    `server_url` logs in as a role that may create databases and roles; `metadata_database` is closed
    to the reader, so a datasource using the sample can never read Loupe's own tables.
    """
    sample_url = with_database(server_url, SAMPLE_DATABASE)
    with psycopg.connect(server_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SAMPLE_DATABASE,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SAMPLE_DATABASE)))
        if not _is_loaded(sample_url):
            _load(sample_url)
        _grant_reader(admin, sample_url, reader_password, metadata_database)
    return with_login(sample_url, READER_ROLE, reader_password)
