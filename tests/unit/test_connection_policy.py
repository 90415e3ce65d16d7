"""Connection strings: parsing per type, the option allowlists, DuckDB's folder, and the host policy."""

from __future__ import annotations

import string
from pathlib import Path
from urllib.parse import quote
from uuid import UUID

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from loupe.config import ConfigurationError, get_settings
from loupe.connectors import DatasourceType, engine
from loupe.security.connection_policy import (
    ConnectionPolicyError,
    PolicySettings,
    check_address,
    check_host,
    parse,
    policy_settings,
)

STRICT = PolicySettings(allow_private_hosts=False)
ORG_A = UUID("0a0a0a0a-0000-4000-8000-00000000000a")
ORG_B = UUID("0b0b0b0b-0000-4000-8000-00000000000b")
LENIENT = PolicySettings(allow_private_hosts=True)


class TestParse:
    def test_postgres_fields_and_masked_display(self) -> None:
        spec = parse(
            "postgres", "postgresql://reader:p%40ss w0rd@DB.Example.com:6543/shop?sslmode=require", STRICT
        )
        assert (spec.host, spec.port, spec.database, spec.user, spec.password) == (
            "db.example.com",
            6543,
            "shop",
            "reader",
            "p@ss w0rd",
        )
        assert spec.option("sslmode") == "require"
        assert spec.display() == "postgresql://reader:****@db.example.com:6543/shop?sslmode=require"
        assert "w0rd" not in repr(spec)

    def test_default_ports_and_alternative_schemes(self) -> None:
        assert parse("postgres", "postgres://u@db.example.com/d", STRICT).port == 5432
        mariadb = parse("mysql", "mariadb://u:pw@db.example.com/d?charset=utf8mb4", STRICT)
        assert mariadb.port == 3306
        assert mariadb.display() == "mysql://u:****@db.example.com:3306/d?charset=utf8mb4"

    def test_ipv6_host_is_shown_in_brackets(self) -> None:
        spec = parse("postgres", "postgresql://u:pw@[2001:db8::1]:5432/d", STRICT)
        assert spec.host == "2001:db8::1"
        assert spec.display() == "postgresql://u:****@[2001:db8::1]:5432/d"

    @pytest.mark.parametrize(
        ("kind", "url", "issue"),
        [
            ("postgres", "mysql://u:p@db.example.com/d", "starts with"),
            ("mysql", "postgresql://u:p@db.example.com/d", "starts with"),
            ("postgres", "postgresql://u:p@/d", "must name a host"),
            ("postgres", "postgresql://u:p@db.example.com", "one database"),
            ("postgres", "postgresql://u:p@db.example.com/a/b", "one database"),
            ("postgres", "postgresql://db.example.com/d", "must name a user"),
            ("postgres", "postgresql://u:p@db.example.com:99999/d", "port"),
            ("postgres", "postgresql://u:p@db.example.com:0/d", "port"),
            ("postgres", "postgresql://u:p@a.example.com,b.example.com/d", "one host"),
            ("postgres", "postgresql://u:p@db.example.com/d#x", "fragment"),
            ("postgres", "postgresql://u:p@bad_host!/d", "not a valid hostname"),
            ("postgres", "postgresql://u:p@db.example.com/d?sslmode=off", "takes one of"),
            ("postgres", "postgresql://u:p@db.example.com/d?sslmode=require&sslmode=disable", "repeated"),
            ("postgres", "postgresql://u:p@db.example.com/d?target_session_attrs=any", "not allowed"),
            ("postgres", "postgresql://u:p@db.example.com/d\n", "control characters"),
        ],
    )
    def test_refusals(self, kind: DatasourceType, url: str, issue: str) -> None:
        with pytest.raises(ConnectionPolicyError, match=issue) as raised:
            parse(kind, url, STRICT)
        assert ":p@" not in str(raised.value)

    @pytest.mark.parametrize(
        ("kind", "query"),
        [
            ("mysql", "local_infile=1"),
            ("mysql", "allowLoadLocalInfile=true"),
            ("mysql", "allowLocalInfile=true"),
            ("mysql", "read_default_file=/etc/mysql/my.cnf"),
            ("mysql", "init_command=SET+GLOBAL+x%3D1"),
            ("mysql", "ssl_ca=/etc/ssl/ca.pem"),
            ("postgres", "sslrootcert=/etc/passwd"),
            ("postgres", "passfile=/root/.pgpass"),
            ("postgres", "service=prod"),
            ("postgres", "host=/var/run/postgresql"),
            ("postgres", "options=-c+default_transaction_read_only%3Doff"),
        ],
    )
    def test_options_that_open_files_or_run_code_are_refused(self, kind: DatasourceType, query: str) -> None:
        scheme = "postgresql" if kind == "postgres" else "mysql"
        with pytest.raises(ConnectionPolicyError, match="opens files"):
            parse(kind, f"{scheme}://u:p@db.example.com/d?{query}", STRICT)

    @pytest.mark.parametrize(
        "database", ["mysql", "MySQL", "information_schema", "performance_schema", "sys", "%6Dysql"]
    )
    def test_mysql_system_databases_are_refused(self, database: str) -> None:
        for scheme in ("mysql", "mariadb"):
            with pytest.raises(ConnectionPolicyError, match="the server's own"):
                parse("mysql", f"{scheme}://u:p@db.example.com/{database}", STRICT)

    @pytest.mark.parametrize("database", ["mysql_shop", "system", "sys2", "information"])
    def test_databases_named_like_system_ones_pass(self, database: str) -> None:
        assert parse("mysql", f"mysql://u:p@db.example.com/{database}", STRICT).database == database

    def test_too_long_is_refused(self) -> None:
        with pytest.raises(ConnectionPolicyError, match="at most"):
            parse("postgres", "postgresql://u:p@db.example.com/" + "d" * 5000, STRICT)


class TestDuckDb:
    def test_file_inside_the_organizations_folder(self, tmp_path: Path) -> None:
        settings = PolicySettings(duckdb_root=tmp_path)
        folder = tmp_path / str(ORG_A)
        absolute = parse("duckdb", f"duckdb://{folder}/shop.duckdb", settings, organization_id=ORG_A)
        relative = parse("duckdb", "duckdb:shop.duckdb", settings, organization_id=ORG_A)
        nested = parse("duckdb", "duckdb:sales/2026/shop.duckdb", settings, organization_id=ORG_A)
        assert absolute.path == relative.path == folder / "shop.duckdb"
        assert nested.path == folder / "sales" / "2026" / "shop.duckdb"
        assert absolute.display() == f"duckdb://{folder}/shop.duckdb"

    @pytest.mark.parametrize(
        "url",
        [
            "duckdb:///etc/passwd",
            "duckdb:../outside.duckdb",
            "duckdb://{root}/../outside.duckdb",
            "duckdb://{folder}/link/secret.duckdb",
            "duckdb://{root}/shared.duckdb",
            "duckdb:///shop.duckdb",
        ],
    )
    def test_paths_outside_the_folder_are_refused(self, tmp_path: Path, url: str) -> None:
        root = tmp_path / "root"
        folder = root / str(ORG_A)
        folder.mkdir(parents=True)
        (tmp_path / "elsewhere").mkdir()
        (folder / "link").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(ConnectionPolicyError, match="inside the organization's"):
            parse(
                "duckdb",
                url.format(root=root, folder=folder),
                PolicySettings(duckdb_root=root.resolve()),
                organization_id=ORG_A,
            )

    @pytest.mark.parametrize(
        "spelling",
        [
            "duckdb://{b}/shop.duckdb",
            "duckdb://{a}/../{org_b}/shop.duckdb",
            "duckdb:../{org_b}/shop.duckdb",
            "duckdb:./../{org_b}/shop.duckdb",
            "duckdb:sub/../../{org_b}/shop.duckdb",
            "duckdb://{a}/%2E%2E/{org_b}/shop.duckdb",
            "duckdb:%2e%2e%2f{org_b}%2fshop.duckdb",
            "duckdb://{root}//{org_b}/shop.duckdb",
            "duckdb://{root}/./{org_b}/./shop.duckdb",
            "duckdb://{a}/to-b/shop.duckdb",
            "duckdb:to-b/shop.duckdb",
            "duckdb:b-file.duckdb",
            "duckdb:..%5C{org_b}%5Cshop.duckdb",
            "duckdb://{root}/{org_b_upper}/shop.duckdb",
        ],
    )
    def test_an_organization_cannot_open_anothers_file_by_any_spelling(
        self, tmp_path: Path, spelling: str
    ) -> None:
        root = (tmp_path / "root").resolve()
        folder_a, folder_b = root / str(ORG_A), root / str(ORG_B)
        folder_a.mkdir(parents=True)
        folder_b.mkdir()
        (folder_b / "shop.duckdb").touch()
        # Links inside A's folder to B's folder and to B's file: resolved, they lead out.
        (folder_a / "to-b").symlink_to(folder_b)
        (folder_a / "b-file.duckdb").symlink_to(folder_b / "shop.duckdb")
        settings = PolicySettings(duckdb_root=root)
        url = spelling.format(root=root, a=folder_a, b=folder_b, org_b=ORG_B, org_b_upper=str(ORG_B).upper())
        assert parse("duckdb", f"duckdb://{folder_b}/shop.duckdb", settings, organization_id=ORG_B)
        with pytest.raises(ConnectionPolicyError, match="inside the organization's"):
            parse("duckdb", url, settings, organization_id=ORG_A)

    def test_parsing_a_file_database_needs_the_organization(self, tmp_path: Path) -> None:
        with pytest.raises(TypeError, match="for an organization"):
            parse("duckdb", "duckdb:shop.duckdb", PolicySettings(duckdb_root=tmp_path))

    @pytest.mark.parametrize(
        "query",
        ["allow_unsigned_extensions=true", "autoload_known_extensions=true", "extension_directory=/tmp"],
    )
    def test_extension_options_are_refused(self, tmp_path: Path, query: str) -> None:
        with pytest.raises(ConnectionPolicyError, match="loads code"):
            parse(
                "duckdb",
                f"duckdb:shop.duckdb?{query}",
                PolicySettings(duckdb_root=tmp_path),
                organization_id=ORG_A,
            )

    @pytest.mark.parametrize(
        "url", ["duckdb:///:memory:", "duckdb://", "duckdb://host/shop.duckdb", "duckdb:", "duckdb:."]
    )
    def test_memory_empty_and_hosts_are_refused(self, tmp_path: Path, url: str) -> None:
        with pytest.raises(ConnectionPolicyError):
            parse("duckdb", url, PolicySettings(duckdb_root=tmp_path), organization_id=ORG_A)

    def test_disabled_without_a_root(self) -> None:
        with pytest.raises(ConnectionPolicyError, match="LOUPE_DUCKDB_ROOT"):
            parse("duckdb", "duckdb:shop.duckdb", PolicySettings(), organization_id=ORG_A)


class TestHosts:
    @pytest.mark.parametrize(
        "address",
        [
            "169.254.169.254",
            "169.254.170.2",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "fe80::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "168.63.129.16",
            "0.0.0.0",  # noqa: S104
            "::",
            "224.0.0.1",
            "255.255.255.255",
        ],
    )
    def test_link_local_metadata_and_reserved_are_always_refused(self, address: str) -> None:
        with pytest.raises(ConnectionPolicyError, match="link-local, metadata or reserved"):
            check_address(address, LENIENT)

    @pytest.mark.parametrize(
        "address", ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.5", "192.168.1.1", "100.64.0.1", "fd12::1"]
    )
    def test_loopback_and_private_only_when_allowed(self, address: str) -> None:
        with pytest.raises(ConnectionPolicyError, match="loopback or private"):
            check_address(address, STRICT)
        check_address(address, LENIENT)

    @pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111"])
    def test_public_addresses_pass(self, address: str) -> None:
        check_address(address, STRICT)

    @pytest.mark.parametrize("host", ["metadata.google.internal", "metadata", "instance-data."])
    def test_metadata_names_are_refused_before_resolving(self, host: str) -> None:
        with pytest.raises(ConnectionPolicyError, match="metadata"):
            check_host(host, LENIENT)

    def test_every_resolved_address_is_checked(self) -> None:
        # localhost resolves to loopback addresses only: refused in production, allowed when configured.
        with pytest.raises(ConnectionPolicyError, match="loopback or private"):
            check_host("localhost", STRICT)
        assert set(check_host("localhost", LENIENT)) <= {"127.0.0.1", "::1"}

    def test_unresolvable_host(self) -> None:
        with pytest.raises(ConnectionPolicyError, match="does not resolve"):
            check_host("no-such-host.invalid", LENIENT)


class TestSettings:
    def test_private_hosts_are_refused_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", raising=False)
        monkeypatch.delenv("LOUPE_DUCKDB_ROOT", raising=False)
        get_settings.cache_clear()
        assert policy_settings() == PolicySettings(allow_private_hosts=False, duckdb_root=None)

    def test_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "true")
        monkeypatch.setenv("LOUPE_DUCKDB_ROOT", str(tmp_path))
        get_settings.cache_clear()
        assert policy_settings() == PolicySettings(allow_private_hosts=True, duckdb_root=tmp_path.resolve())
        monkeypatch.setenv("LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS", "maybe")
        get_settings.cache_clear()
        with pytest.raises(ConfigurationError, match=r"LOUPE_ALLOW_PRIVATE_DATASOURCE_HOSTS.*boolean"):
            policy_settings()


# Property tests: what parse accepts round-trips, what it refuses it refuses with its own error.

SAFE_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@/?# %", min_size=1, max_size=30
)
LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
HOSTNAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


@given(
    user=SAFE_TEXT,
    password=SAFE_TEXT,
    host=HOSTNAME,
    port=st.integers(min_value=1, max_value=65535),
    database=SAFE_TEXT.filter(lambda text: "/" not in text),
    kind=st.sampled_from(["postgres", "mysql"]),
)
def test_encoded_urls_round_trip_and_display_hides_the_password(
    user: str, password: str, host: str, port: int, database: str, kind: DatasourceType
) -> None:
    scheme = "postgresql" if kind == "postgres" else "mysql"
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    url = f"{scheme}://{credentials}@{host}:{port}/{quote(database, safe='')}"
    spec = parse(kind, url, STRICT)
    assert (spec.user, spec.password, spec.host, spec.port, spec.database) == (
        user,
        password,
        host,
        port,
        database,
    )
    shown = spec.display()
    assert ":****@" in shown
    assume(quote(password, safe="") not in shown.replace(":****@", "@"))
    assert quote(password, safe="") not in shown
    assert parse(kind, shown, STRICT).password == "****"


@given(kind=st.sampled_from(["postgres", "mysql", "duckdb"]), text=st.text(max_size=200))
def test_any_text_is_parsed_or_refused_with_a_policy_error(kind: DatasourceType, text: str) -> None:
    settings = PolicySettings(duckdb_root=Path("/srv/loupe-duckdb"))
    try:
        spec = parse(kind, text, settings, organization_id=ORG_A)
    except ConnectionPolicyError:
        return
    assert spec.type == kind
    if spec.path is not None:
        assert spec.path.is_relative_to(Path("/srv/loupe-duckdb") / str(ORG_A))


@given(
    kind=st.sampled_from(["postgres", "mysql"]),
    name=st.text(alphabet=string.ascii_letters + "_-", min_size=1, max_size=30),
    value=st.text(alphabet=string.ascii_letters + string.digits, max_size=10),
)
def test_options_outside_the_allowlist_are_refused(kind: DatasourceType, name: str, value: str) -> None:
    assume(name.lower() not in engine(kind).options)
    scheme = "postgresql" if kind == "postgres" else "mysql"
    with pytest.raises(ConnectionPolicyError, match="option"):
        parse(kind, f"{scheme}://u:p@db.example.com/d?{name}={value}", STRICT)
