"""Datasource connection strings: parsed against their engine's schemes and option allowlist, hosts
checked against the network policy (never link-local or cloud metadata; loopback and private ranges
only when allowed), and sessions opened only to a checked address."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, unquote, urlsplit
from uuid import UUID

from loupe.config import get_settings
from loupe.connectors import ConnectionSpec, DatasourceType, Limits, Session, engine

# Options that make a server or this client open files, run commands or load code: named in the
# refusal so an admin sees why, though anything outside the allowlist is refused anyway.
FILE_OR_CODE_OPTIONS = frozenset(
    {
        "local_infile",
        "allowloadlocalinfile",
        "allowlocalinfile",
        "allowurlinlocalinfile",
        "read_default_file",
        "read_default_group",
        "init_command",
        "unix_socket",
        "plugin_dir",
        "ssl_ca",
        "ssl_cert",
        "ssl_key",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "passfile",
        "service",
        "servicefile",
        "options",
        "host",
        "hostaddr",
        "allow_unsigned_extensions",
        "allow_community_extensions",
        "autoload_known_extensions",
        "autoinstall_known_extensions",
        "extension_directory",
        "enable_external_access",
        "custom_extension_repository",
    }
)
# Names that cloud providers answer instance metadata on, whatever they resolve to here.
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
# Metadata and platform endpoints outside the link-local ranges ipaddress already knows.
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in ("100.100.100.200/32", "168.63.129.16/32", "fd00:ec2::254/128", "192.0.0.192/32")
)
NAT64_NETWORK = ipaddress.ip_network("64:ff9b::/96")
MAX_CONNECTION_STRING = 4096


class ConnectionPolicyError(ValueError):
    """A connection string this service will not use; the message never repeats the password."""


@dataclass(frozen=True)
class PolicySettings:
    """`LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS` (make dev and tests) and `LOUPE_DUCKDB_ROOT`."""

    allow_private_hosts: bool = False
    duckdb_root: Path | None = None


def policy_settings() -> PolicySettings:
    settings = get_settings()
    root = settings.duckdb_root
    return PolicySettings(
        allow_private_hosts=settings.allow_private_datasource_hosts,
        duckdb_root=root.expanduser().resolve() if root else None,
    )


def parse(
    kind: DatasourceType,
    connection_string: str,
    settings: PolicySettings | None = None,
    *,
    organization_id: UUID | None = None,
) -> ConnectionSpec:
    """Parse and validate a connection string of `kind`; no network access (see `check_host`). A file
    database resolves inside its organization's folder, so parsing one needs `organization_id`."""
    settings = settings or policy_settings()
    if len(connection_string) > MAX_CONNECTION_STRING:
        raise ConnectionPolicyError(f"a connection string has at most {MAX_CONNECTION_STRING} characters")
    if any(ord(character) < 32 or ord(character) == 127 for character in connection_string):
        raise ConnectionPolicyError("the connection string contains control characters")
    try:
        parts = urlsplit(connection_string.strip())
        port = parts.port
    except ValueError:
        raise ConnectionPolicyError("the connection string is not a valid URL (check the port)") from None
    engine_spec = engine(kind)
    scheme = parts.scheme.lower()
    if scheme not in engine_spec.schemes:
        allowed = ", ".join(f"{name}://" for name in sorted(engine_spec.schemes))
        raise ConnectionPolicyError(f"a {kind} connection string starts with {allowed}")
    if parts.fragment:
        raise ConnectionPolicyError("the connection string may not have a #fragment")
    options = _options(kind, parts.query)
    if engine_spec.default_port is None:
        if parts.netloc:
            raise ConnectionPolicyError(
                f"a {kind} connection string names a file: {engine_spec.schemes[0]}:///path/to/file.{kind}"
            )
        if organization_id is None:
            raise TypeError(f"a {kind} connection string is parsed for an organization")
        path = _database_file(kind, unquote(parts.path), organization_folder(settings, kind, organization_id))
        return ConnectionSpec(type=kind, path=path)
    host = parts.hostname or ""
    if not host:
        raise ConnectionPolicyError("the connection string must name a host")
    if "," in parts.netloc or "%" in host:
        raise ConnectionPolicyError("name one host, without a zone or a list")
    check_hostname_syntax(host)
    database = unquote(parts.path.removeprefix("/"))
    if not database or "/" in database:
        raise ConnectionPolicyError("the connection string must name one database: ...@host:port/database")
    if database.lower() in engine_spec.system_databases:
        raise ConnectionPolicyError(
            f"the database {database!r} is the server's own; name the database that holds your data"
        )
    user = unquote(parts.username or "")
    if not user:
        raise ConnectionPolicyError("the connection string must name a user: scheme://user:password@host")
    if port == 0:
        raise ConnectionPolicyError("the port must be between 1 and 65535")
    return ConnectionSpec(
        type=kind,
        host=host.lower(),
        port=port or engine_spec.default_port,
        database=database,
        user=user,
        password=unquote(parts.password or ""),
        options=options,
    )


def _options(kind: DatasourceType, query: str) -> tuple[tuple[str, str], ...]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConnectionPolicyError("the connection string's options are malformed") from None
    allowed = engine(kind).options
    seen: dict[str, str] = {}
    for raw_name, value in pairs:
        name = raw_name.strip().lower()
        if name.replace("-", "_") in FILE_OR_CODE_OPTIONS or name in FILE_OR_CODE_OPTIONS:
            raise ConnectionPolicyError(
                f"option {name!r} is refused: it opens files on the server or this service, or loads code"
            )
        if name not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ConnectionPolicyError(f"option {name!r} is not allowed for {kind} (allowed: {names})")
        if name in seen:
            raise ConnectionPolicyError(f"option {name!r} is repeated")
        values = allowed[name]
        if values is not None and value not in values:
            raise ConnectionPolicyError(f"option {name!r} takes one of {', '.join(sorted(values))}")
        if values is None and (len(value) > 64 or not value.isprintable()):
            raise ConnectionPolicyError(f"option {name!r} takes at most 64 printable characters")
        seen[name] = value
    return tuple(seen.items())


def check_hostname_syntax(host: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(
        0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum() and label.isascii()
        for label in labels
    ):
        raise ConnectionPolicyError("the host is not a valid hostname or IP address")


def organization_folder(settings: PolicySettings, kind: DatasourceType, organization_id: UUID) -> Path:
    """The folder an organization's database files live in: `<LOUPE_DUCKDB_ROOT>/<organization id>`."""
    if settings.duckdb_root is None:
        raise ConnectionPolicyError(f"{kind} datasources are disabled: no LOUPE_DUCKDB_ROOT is configured")
    return settings.duckdb_root / str(organization_id)


def _database_file(kind: DatasourceType, raw: str, folder: Path) -> Path:
    """The database file a file engine's connection string names: a path relative to the
    organization's folder, or an absolute one inside it; never another organization's file."""
    if not raw or raw in ("/", ":memory:") or "\x00" in raw:
        raise ConnectionPolicyError(
            f"a {kind} connection string names a database file in the organization's folder"
        )
    outside = f"the {kind} file must be inside the organization's datasource folder"
    if ".." in PurePosixPath(raw).parts or "\\" in raw:
        raise ConnectionPolicyError(outside)
    candidate = Path(raw) if raw.startswith("/") else folder / raw
    # resolve() follows symlinks, so a link inside the folder (or the folder itself, if it is one)
    # cannot point at another organization's files; the folder is compared as it is named.
    resolved = candidate.resolve()
    if not resolved.is_relative_to(folder) or resolved == folder:
        raise ConnectionPolicyError(outside)
    return resolved


def check_host(host: str, settings: PolicySettings | None = None) -> list[str]:
    """Resolve `host` and check every address; returns the addresses to connect to, in order.

    Connect to one of these, not to the name again, so a second DNS answer cannot swap in another.
    """
    settings = settings or policy_settings()
    if host.rstrip(".") in METADATA_HOSTNAMES:
        raise ConnectionPolicyError("cloud metadata hosts are refused")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ConnectionPolicyError("the host does not resolve") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ConnectionPolicyError("the host does not resolve")
    for address in addresses:
        check_address(address, settings)
    return addresses


def check_address(address: str, settings: PolicySettings) -> None:
    """Refuse link-local, metadata, multicast and unspecified addresses always; loopback and private
    ones unless the settings allow them."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 (mapped, 6to4, NAT64) is judged as the address it reaches.
        nat64 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64_NETWORK else None
        ip = ip.ipv4_mapped or ip.sixtofour or nat64 or ip
    # ::1 lies in a block ipaddress calls reserved; loopback is judged by the setting below.
    if not ip.is_loopback and (
        ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or any(ip in network for network in METADATA_NETWORKS)
    ):
        raise ConnectionPolicyError("the host resolves to a link-local, metadata or reserved address")
    if ip.is_global:
        return
    if not settings.allow_private_hosts:
        raise ConnectionPolicyError(
            "the host resolves to a loopback or private address, which is not allowed here"
        )


def connect(spec: ConnectionSpec, limits: Limits) -> Session:
    """Open a session; the caller closes it. The host is resolved and checked again here, at connect
    time, and the session connects to the checked address rather than to the name."""
    address = check_host(spec.host)[0] if spec.host else None
    return engine(spec.type).connect(spec, address, limits)
