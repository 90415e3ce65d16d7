"""`make dev`: every function on one machine, in worker processes of its own, behind a local API Gateway,
with an embedded PostgreSQL and moto for AWS; data and generated secrets persist under $LOUPE_HOME."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from infra.local import sample_dashboard
from infra.local.console import Console
from infra.local.gateway import Gateway, GatewayServer, HttpRequest, serve, shutdown
from infra.local.invokers import WorkerPools
from infra.local.queue_poller import QueuePoller
from infra.local.sample_data import READER_ROLE, ensure_sample_database, mask_password, with_database
from infra.local.tcp_proxy import TcpToUnixProxy
from infra.local.template_routes import ROOT
from infra.local.ticker import Ticker
from loupe import config, migrations
from loupe.api.prefix import API_PREFIX

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

METADATA_DATABASE = "loupe"
# `.local` would be the natural choice, but the API (email-validator) refuses special-use domains.
DEMO_EMAIL = "demo@loupe.example"
DEFAULT_CORS_ORIGINS = "http://localhost:3000,http://127.0.0.1:3000"
SECRETS_FILE = "secrets.json"
# Secret name → how to generate it; each is generated once and kept in $LOUPE_HOME/secrets.json.
SECRET_GENERATORS: dict[str, Callable[[], str]] = {
    "jwt_secret": lambda: secrets.token_urlsafe(48),
    "demo_password": lambda: secrets.token_urlsafe(12),
    "sample_reader_password": lambda: secrets.token_urlsafe(24),
}
HBA_MARKER = "# loupe local stack: the sample reader must log in with its password"
# The address the gateway, moto and the database's TCP port listen on. Set (to docker0's address, or
# 0.0.0.0), containers (sam local) reach them as CONTAINER_HOST, and the demo datasource is registered so.
ADDRESS_VARIABLE = "LOUPE_LOCAL_ADDRESS"
LOOPBACK = "127.0.0.1"
CONTAINER_HOST = "host.docker.internal"
# What the running stack gives its functions, for `make sam-env` (removed when the stack stops).
STACK_FILE = "local-stack.json"


def local_address() -> str | None:
    """LOUPE_LOCAL_ADDRESS, or None when unset (everything on loopback)."""
    return os.environ.get(ADDRESS_VARIABLE, "").strip() or None


def connect_host(address: str) -> str:
    """The host this machine's own clients use for a server listening on `address`."""
    return LOOPBACK if address in ("0.0.0.0", "::") else address  # noqa: S104  # what it listens on, not binds


def over_tcp(url: str, host: str, port: int) -> str:
    """A PostgreSQL URL (maybe over a socket folder, `?host=`) at `host`:`port`, same login and database."""
    parts = urlsplit(url)
    login = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{login}@{host}:{port}", query=""))


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (it holds secrets), replacing it whole."""
    partial = path.with_name(path.name + ".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text)
    os.replace(partial, path)


def loupe_home() -> Path:
    return Path(os.environ.get("LOUPE_HOME") or ROOT / ".loupe").expanduser().resolve()


@dataclass(frozen=True)
class LocalSecrets:
    jwt_secret: str
    demo_password: str
    sample_reader_password: str


def load_secrets(home: Path) -> LocalSecrets:
    """The local stack's secrets, generated on first use and kept (mode 0600) for the next start."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / SECRETS_FILE
    stored: dict[str, str] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    missing = {name: generate() for name, generate in SECRET_GENERATORS.items() if not stored.get(name)}
    if missing:
        stored.update(missing)
        write_private(path, json.dumps(stored, indent=2))
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return LocalSecrets(**{name: stored[name] for name in SECRET_GENERATORS})


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops its server when the last process holding a handle lets go; a process killed with
    SIGKILL never does, and would keep the server running after every later stop. Drop such pids."""
    from pgserver.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with PostgresServer._lock:
        pids: list[int] = json.loads(handles.read_text() or "[]")
        alive = [pid for pid in pids if _process_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_postgres(home: Path) -> PostgresServer:
    """The embedded server of $LOUPE_HOME/pgdata, started unless another process already runs it."""
    # Imported here: importing pgserver warns where XDG_RUNTIME_DIR is unset, and main() silences that first.
    from pgserver.postgres_server import get_server

    pgdata = home / "pgdata"
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    return get_server(pgdata, cleanup_mode="stop")


def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the server if missing; return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


def require_reader_password(server: PostgresServer) -> None:
    """pgserver trusts every local login; make the sample reader's password count, as on a real server."""
    hba = Path(server.pgdata) / "pg_hba.conf"
    rules = hba.read_text(encoding="utf-8")
    if HBA_MARKER in rules:
        return
    # In place, so the file keeps the owner and mode the server needs.
    hba.write_text(f"{HBA_MARKER}\nlocal all {READER_ROLE} scram-sha-256\n{rules}", encoding="utf-8")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")


@contextmanager
def metadata_database(home: Path) -> Iterator[str]:
    """$DATABASE_URL, or the local stack's metadata database with its server started for the block."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    server = start_postgres(home)
    try:
        yield ensure_database(server.get_uri(), METADATA_DATABASE)
    finally:
        server.cleanup()


def _port_is_free(port: int, address: str = LOOPBACK) -> bool:
    """True when a server may listen on `port`: bound the way servers bind, with SO_REUSEADDR, so a
    port left in TIME_WAIT by a closed connection counts as free and only a live listener does not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


@contextmanager
def moto_server(preferred_port: int, address: str = LOOPBACK) -> Iterator[str]:
    """moto's server on `address` for the block, on `preferred_port` or else a free one; yields its URL."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request moto serves, the queue pollers' several a second among them.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Probe first: moto binds in its own thread and never reports a failed bind, it hangs.
    port = preferred_port if preferred_port and _port_is_free(preferred_port, address) else 0
    server = ThreadedMotoServer(ip_address=address, port=port, verbose=False)
    server.start()
    try:
        _, bound = server.get_host_and_port()
        yield f"http://{connect_host(address)}:{bound}"
    finally:
        server.stop()


def aws_client(service: str, aws_endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106  # moto's placeholder credentials
    )


def create_credentials_key(aws_endpoint: str) -> str:
    """A KMS key in moto for datasource credentials. moto keeps keys in memory, so each start makes a new
    one and the demo datasource is sealed again (see register_demo_datasource)."""
    with closing(aws_client("kms", aws_endpoint)) as kms:
        arn: str = kms.create_key(Description="Loupe local datasource credentials")["KeyMetadata"]["Arn"]
    return arn


RUNS_QUEUE = "loupe-runs"
RESULTS_BUCKET = "loupe-results-local"
# S3 destinations write under their prefix of this bucket (template.yaml: DeliveryBucketName).
DELIVERY_BUCKET = "loupe-deliveries-local"
SCHEDULED_RUNS_QUEUE = "loupe-scheduled-runs"
EXPORTS_QUEUE = "loupe-exports"
ALERTS_TOPIC = "loupe-alerts"
# How often the local stack ticks its schedules, as template.yaml's rules do (the reaper every 5
# minutes in AWS, the scheduler every minute, the janitor daily); LOUPE_LOCAL_REAPER_SECONDS,
# LOUPE_LOCAL_SCHEDULER_SECONDS and LOUPE_LOCAL_JANITOR_SECONDS change them.
REAPER_SECONDS = 60
SCHEDULER_SECONDS = 60
JANITOR_SECONDS = 86_400
# Read by the local dead-letter poller only; no function needs it.
DEAD_LETTER_QUEUE_VARIABLE = "LOUPE_LOCAL_DEAD_LETTER_QUEUE_URL"
SCHEDULED_DEAD_LETTER_QUEUE_VARIABLE = "LOUPE_LOCAL_SCHEDULED_DEAD_LETTER_QUEUE_URL"
EXPORTS_DEAD_LETTER_QUEUE_VARIABLE = "LOUPE_LOCAL_EXPORTS_DEAD_LETTER_QUEUE_URL"


def create_runs_resources(aws_endpoint: str) -> dict[str, str]:
    """The runs queues (interactive and scheduled) and the exports queue, each with its dead-letter
    queue and redrive, the results and delivery buckets and the alerts topic, in moto, as template.yaml
    declares them; their settings (the dead-letter queues' URLs only for the local pollers)."""
    with closing(aws_client("sqs", aws_endpoint)) as sqs, closing(aws_client("s3", aws_endpoint)) as s3:

        def queue_with_dead_letters(name: str) -> tuple[str, str]:
            dead_letter_url: str = sqs.create_queue(QueueName=f"{name}-dead-letters")["QueueUrl"]
            dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            redrive = json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": "5"})
            # A minute, not template.yaml's 90: a message the local runner failed to report on (the
            # process stopped, say) comes back while you wait; the runner's claim makes a second
            # delivery of a run still executing harmless.
            queue_url: str = sqs.create_queue(
                QueueName=name, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive}
            )["QueueUrl"]
            return queue_url, dead_letter_url

        runs_url, runs_dead_letters = queue_with_dead_letters(RUNS_QUEUE)
        scheduled_url, scheduled_dead_letters = queue_with_dead_letters(SCHEDULED_RUNS_QUEUE)
        exports_url, exports_dead_letters = queue_with_dead_letters(EXPORTS_QUEUE)
        s3.create_bucket(Bucket=RESULTS_BUCKET)
        s3.create_bucket(Bucket=DELIVERY_BUCKET)
    with closing(aws_client("sns", aws_endpoint)) as sns:
        alerts_topic: str = sns.create_topic(Name=ALERTS_TOPIC)["TopicArn"]
    return {
        "LOUPE_ALERTS_TOPIC_ARN": alerts_topic,
        "LOUPE_RUNS_QUEUE_URL": runs_url,
        "LOUPE_SCHEDULED_RUNS_QUEUE_URL": scheduled_url,
        "LOUPE_EXPORTS_QUEUE_URL": exports_url,
        "LOUPE_RESULTS_BUCKET": RESULTS_BUCKET,
        "LOUPE_DELIVERY_BUCKET": DELIVERY_BUCKET,
        DEAD_LETTER_QUEUE_VARIABLE: runs_dead_letters,
        SCHEDULED_DEAD_LETTER_QUEUE_VARIABLE: scheduled_dead_letters,
        EXPORTS_DEAD_LETTER_QUEUE_VARIABLE: exports_dead_letters,
    }


def local_aws_environment(
    secrets_: LocalSecrets, database_url: str, aws_endpoint: str, home: Path
) -> dict[str, str]:
    """The functions' variables with the AWS resources they use created in moto (key, queue, bucket)."""
    kms_key_id = create_credentials_key(aws_endpoint)
    variables = handler_environment(secrets_, database_url, aws_endpoint, kms_key_id, home)
    return variables | create_runs_resources(aws_endpoint)


def handler_environment(
    secrets_: LocalSecrets, database_url: str, aws_endpoint: str, kms_key_id: str, home: Path
) -> dict[str, str]:
    """The variables the functions read, as the template would set them, pointed at the local services."""
    duckdb_root = home / "duckdb"
    duckdb_root.mkdir(parents=True, exist_ok=True)
    return {
        "LOUPE_KMS_KEY_ID": kms_key_id,
        # Datasources on this machine (the sample database) are the point of the local stack.
        "LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS": "true",
        "LOUPE_DUCKDB_ROOT": str(duckdb_root),
        "LOUPE_NOTIFIER": "outbox",
        "LOUPE_OUTBOX_DIR": str(home / "outbox"),
        "DATABASE_URL": database_url,
        "LOUPE_ENV": "development",
        "LOUPE_JWT_SECRET": secrets_.jwt_secret,
        "LOUPE_CORS_ORIGINS": os.environ.get("LOUPE_CORS_ORIGINS") or DEFAULT_CORS_ORIGINS,
        "POWERTOOLS_TRACE_DISABLED": os.environ.get("POWERTOOLS_TRACE_DISABLED") or "true",
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


# Set elsewhere, these would override the local values or conflict with them (config allows one JWT source).
OVERRIDDEN_VARIABLES = (
    "LOUPE_JWT_SECRET_FILE",
    "LOUPE_JWT_SECRET_ARN",
    "LOUPE_JWT_SECRET_PARAMETER",
    "LOUPE_DATABASE_SECRET_ARN",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` (and clear the conflicting variables) for the block; restore the previous ones after."""
    names = [*values, *OVERRIDDEN_VARIABLES]
    previous = {name: os.environ.get(name) for name in names}
    for name in OVERRIDDEN_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(values)
    # Settings are read once per process; a handler imported from now on must see these values.
    config.get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.get_settings.cache_clear()


def functions_environment(values: Mapping[str, str]) -> dict[str, str]:
    """The functions' whole environment, for their worker processes: this process's without the
    conflicting variables, and `values`."""
    inherited = {name: value for name, value in os.environ.items() if name not in OVERRIDDEN_VARIABLES}
    return inherited | dict(values)


# The address the stack's own setup requests come from: not the local clients' 127.0.0.1, whose
# auth requests may have used up the per-address limit just before a restart.
STACK_SOURCE_IP = "127.0.0.2"


def seed_demo_user(gateway: Gateway, database_url: str, password: str) -> bool:
    """Register the demo organization and admin through the auth function, once; True if created now."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM users WHERE email = %s", (DEMO_EMAIL,)).fetchone():
            return False
    body = {"email": DEMO_EMAIL, "password": password, "name": "Demo Admin", "organization_name": "Demo"}
    response = gateway.handle(
        HttpRequest(
            method="POST",
            target=f"{API_PREFIX}/auth/register",
            headers=[("Content-Type", "application/json"), ("User-Agent", "loupe-devstack")],
            body=json.dumps(body).encode(),
            source_ip=STACK_SOURCE_IP,
        )
    )
    if response.status != 201:
        raise RuntimeError(f"registering the demo user failed with HTTP {response.status}")
    return True


DEMO_DATASOURCE = "Demo shop (sample data)"


class DemoLoginRefused(RuntimeError):
    """The demo account could not sign in (locked after wrong passwords, say)."""


def register_demo_datasource(gateway: Gateway, demo_password: str, sample_url: str) -> None:
    """The sample database as the demo organization's datasource, through the datasources function:
    created once, its connection string sealed again on every start (new port, new moto key); and the
    sample dashboard on it, created once."""

    def call(method: str, target: str, token: str | None = None, body: object = None) -> dict[str, object]:
        headers = [("Content-Type", "application/json"), ("User-Agent", "loupe-devstack")]
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        response = gateway.handle(
            HttpRequest(
                method,
                target,
                headers,
                json.dumps(body).encode() if body is not None else b"",
                source_ip=STACK_SOURCE_IP,
            )
        )
        if response.status >= 300:
            raise RuntimeError(f"{method} {target.split('?')[0]} failed with HTTP {response.status}")
        parsed: dict[str, object] = json.loads(response.body) if response.body else {}
        return parsed

    try:
        login = call(
            "POST", f"{API_PREFIX}/auth/login", body={"email": DEMO_EMAIL, "password": demo_password}
        )
    except RuntimeError as error:
        raise DemoLoginRefused(str(error)) from None
    token = str(login["access_token"])
    listed = call("GET", f"{API_PREFIX}/datasources?" + urlencode({"q": DEMO_DATASOURCE}), token)
    existing = [item for item in listed["items"] if item["name"] == DEMO_DATASOURCE]  # type: ignore[attr-defined]
    if existing:
        datasource_id = str(existing[0]["id"])
        call("PATCH", f"{API_PREFIX}/datasources/{datasource_id}", token, {"connection_string": sample_url})
    else:
        datasource_id = str(
            call(
                "POST",
                f"{API_PREFIX}/datasources",
                token,
                {"name": DEMO_DATASOURCE, "type": "postgres", "connection_string": sample_url},
            )["id"]
        )
    sample_dashboard.ensure(
        lambda method, target, body: call(method, target, token, body), datasource_id, DEMO_EMAIL
    )
    call("POST", f"{API_PREFIX}/auth/logout-all", token)


def _database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


class LocalStack:
    """PostgreSQL, moto and the local gateway: start() starts them in order, stop() stops them in reverse."""

    def __init__(
        self,
        home: Path | None = None,
        *,
        address: str | None = None,
        port: int | None = None,
        moto_port: int | None = None,
        console: Console | None = None,
    ) -> None:
        self.home = home or loupe_home()
        # Set, the stack is for containers too (sam local); unset, everything stays on loopback.
        self.address = local_address() if address is None else address
        self.host = self.address or LOOPBACK
        self.port = int(os.environ.get("PORT") or 3000) if port is None else port
        self.moto_port = int(os.environ.get("MOTO_PORT") or 5000) if moto_port is None else moto_port
        self.console = Console.from_environment() if console is None else console
        self.secrets: LocalSecrets | None = None
        self.aws_endpoint: str | None = None
        self.sample_url: str | None = None
        self.database_port: int | None = None  # the TCP port in front of the embedded server's socket
        self.applied_migrations: list[str] = []
        self.demo_created = False
        self.gateway: Gateway | None = None
        self.workers: WorkerPools | None = None
        self._http: GatewayServer | None = None
        self._proxy: TcpToUnixProxy | None = None
        self._resources = ExitStack()

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the stack is not running")
        return f"http://{connect_host(self.host)}:{self._http.port}"

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.secrets = load_secrets(self.home)
        server_url = os.environ.get("DATABASE_URL")
        if server_url:
            database_url = server_url
        else:
            postgres = start_postgres(self.home)
            self._resources.callback(postgres.cleanup)
            require_reader_password(postgres)
            server_url = postgres.get_uri()
            database_url = ensure_database(server_url, METADATA_DATABASE)
        self.applied_migrations = migrations.apply(database_url)
        self.aws_endpoint = self._resources.enter_context(moto_server(self.moto_port, self.host))
        variables = local_aws_environment(self.secrets, database_url, self.aws_endpoint, self.home)
        self._resources.enter_context(environment(variables))
        # Read now, so that a configuration error stops `make dev` at once rather than every worker's start.
        config.get_settings()
        self.workers = WorkerPools(functions_environment(variables), console=self.console)
        self._resources.callback(self._stop_workers)
        gateway = Gateway(invoker=self.workers)
        self.demo_created = seed_demo_user(gateway, database_url, self.secrets.demo_password)
        self.database_port = self._database_over_tcp(database_url)
        self.sample_url = self._sample_database(server_url, _database_name(database_url))
        if self.sample_url is not None:
            self.sample_url = self._reachable_over_tcp(self.sample_url)
            try:
                register_demo_datasource(gateway, self.secrets.demo_password, self.sample_url)
            except DemoLoginRefused as refusal:
                # The stack still serves; only the demo datasource keeps its old, stale credentials.
                print(f"demo datasource not updated: {refusal}", file=sys.stderr, flush=True)
            except RuntimeError as refusal:
                if self.address is None:
                    raise
                # host.docker.internal may name nothing on this machine, only in containers.
                print(f"demo datasource not updated for containers: {refusal}", file=sys.stderr, flush=True)
        self._record(variables)
        for queue_variable, function in (
            ("LOUPE_RUNS_QUEUE_URL", "RunnerFunction"),
            ("LOUPE_SCHEDULED_RUNS_QUEUE_URL", "RunnerFunction"),
            (DEAD_LETTER_QUEUE_VARIABLE, "DeadLetterFunction"),
            (SCHEDULED_DEAD_LETTER_QUEUE_VARIABLE, "DeadLetterFunction"),
            ("LOUPE_EXPORTS_QUEUE_URL", "ExportFunction"),
            (EXPORTS_DEAD_LETTER_QUEUE_VARIABLE, "DeadLetterFunction"),
        ):
            poller = QueuePoller(
                aws_client("sqs", self.aws_endpoint),
                variables[queue_variable],
                function,
                gateway.invoke,
                self.console,
            ).start()
            self._resources.callback(poller.stop)
        for function, variable, default_seconds in (
            ("ReaperFunction", "LOUPE_LOCAL_REAPER_SECONDS", REAPER_SECONDS),
            ("SchedulerFunction", "LOUPE_LOCAL_SCHEDULER_SECONDS", SCHEDULER_SECONDS),
            ("JanitorFunction", "LOUPE_LOCAL_JANITOR_SECONDS", JANITOR_SECONDS),
        ):
            interval = float(os.environ.get(variable) or default_seconds)
            ticker = Ticker(function, gateway.invoke, interval, self.console).start()
            self._resources.callback(ticker.stop)
        self._http = serve(gateway, self.host, self.port, console=self.console)
        self.gateway = gateway
        self._resources.callback(self._stop_http)

    def _sample_database(self, server_url: str, metadata: str) -> str | None:
        assert self.secrets is not None
        try:
            return ensure_sample_database(
                server_url, self.secrets.sample_reader_password, metadata_database=metadata
            )
        except psycopg.errors.InsufficientPrivilege:
            # A DATABASE_URL login that may not create databases or roles: run without the sample.
            print("sample database skipped: the DATABASE_URL role may not create it", file=sys.stderr)
            return None

    def _reachable_over_tcp(self, url: str) -> str:
        """The embedded server listens on a socket only: put a TCP port in front of it (on the stack's
        address), reached from this machine, or from containers when the address is set."""
        socket_folder = parse_qs(urlsplit(url).query).get("host")
        if not socket_folder:
            return url
        if self._proxy is None:
            self._proxy = TcpToUnixProxy(Path(socket_folder[0]) / ".s.PGSQL.5432", host=self.host).start()
            self._resources.callback(self._stop_proxy)
        return over_tcp(url, CONTAINER_HOST if self.address else connect_host(self.host), self._proxy.port)

    def _database_over_tcp(self, database_url: str) -> int | None:
        """For containers, which reach no socket, the metadata database's TCP port (the embedded one's)."""
        if self.address is None or "host=" not in urlsplit(database_url).query:
            return None
        self._reachable_over_tcp(database_url)
        assert self._proxy is not None
        return self._proxy.port

    def _record(self, variables: Mapping[str, str]) -> None:
        """What the functions get, for `make sam-env`; it holds the JWT key, so only its owner reads it."""
        record = {
            "address": self.address,
            "database_port": self.database_port,
            "environment": dict(variables),
        }
        path = self.home / STACK_FILE
        write_private(path, json.dumps(record, indent=2))
        self._resources.callback(path.unlink, missing_ok=True)

    def _stop_http(self) -> None:
        if self._http is not None:
            shutdown(self._http)
            self._http = None
        if self.gateway is not None:
            # Let an invocation in flight finish before its worker is stopped.
            self.gateway.idle(timeout=30)
            self.gateway = None

    def _stop_proxy(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None

    def _stop_workers(self) -> None:
        if self.workers is not None:
            self.workers.close()
            self.workers = None

    def stop(self) -> None:
        self._resources.close()

    def banner(self) -> str:
        assert self.secrets is not None
        lines = [
            f"Loupe is ready at {self.url}{API_PREFIX} (docs: {self.url}{API_PREFIX}/docs)",
            f"  demo login: {DEMO_EMAIL} / {self.secrets.demo_password}",
            f"  AWS (moto): {self.aws_endpoint}",
        ]
        if self.sample_url:
            lines.append(f"  sample database (read-only): {mask_password(self.sample_url)}")
        lines.append(f"  mail (password resets, reports): {self.home / 'outbox'}")
        if self.address:
            lines.append(f"  for containers (sam local) on {self.address}: make sam-env")
        lines.append(f"  data and secrets: {self.home}   Ctrl-C stops everything")
        return "\n".join(lines)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main() -> int:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    # SIGTERM (docker stop, a supervisor) stops as cleanly as Ctrl-C. SIGINT is set too: a shell starts
    # background jobs with it ignored, and Python then never turns it into KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    started = time.perf_counter()
    stack = LocalStack()
    try:
        with stack:
            print(stack.banner(), flush=True)
            print(f"  started in {time.perf_counter() - started:.1f}s", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("Loupe local stack stopped", file=sys.stderr, flush=True)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(f"port {stack.port} is in use: set PORT to another one", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
