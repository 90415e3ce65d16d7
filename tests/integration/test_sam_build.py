"""The deployable artifact: `sam validate --lint` is clean, and `sam build` yields a layer and functions
that import and answer on their own, without the repository's source tree.

Each function is imported in a fresh, isolated Python 3.12 (`-I -S`) whose `sys.path` holds only the
function's build folder, the built layer's `python/` folder and the standard library, the way the
Lambda runtime lays them out (`$LAMBDA_TASK_ROOT` and `/opt/python`).

SAM CLI comes from `.venv-sam` (`make validate` creates it; `make test` depends on it).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from infra import sam_tools
from infra.local.devstack import aws_client, create_runs_resources, moto_server
from infra.local.events import rest_api_event, scheduled_event, sqs_event
from infra.local.template_routes import find_route

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
SAM_TIMEOUT_SECONDS = 900
# Past this, tell someone: the build is the slowest part of the suite.
SLOW_BUILD_SECONDS = 240
RESULT_MARKER = "@@loupe-sam-build-result@@ "

# Runs in the isolated interpreter: argv = function dir, JSON list of layer dirs, handler, invoke flag.
# Powertools logs to stdout, so the result is the one line that starts with RESULT_MARKER.
ISOLATED_SCRIPT = r"""
import importlib, json, sys

function_dir, layer_dirs, handler, invoke = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
stdlib = list(sys.path)
sys.path[:] = [function_dir, *layer_dirs, *stdlib]
module_name, _, attribute = handler.rpartition(".")
module = importlib.import_module(module_name)
lambda_handler = getattr(module, attribute, None)
roots = (function_dir, *layer_dirs, *stdlib)
foreign = sorted(
    str(getattr(loaded, "__file__", None))
    for loaded in list(sys.modules.values())
    if getattr(loaded, "__file__", None) and not str(loaded.__file__).startswith(roots)
)
result = {
    "version": list(sys.version_info[:2]),
    "stdlib": stdlib,
    "module_file": getattr(module, "__file__", None),
    "callable": callable(lambda_handler),
    "foreign_modules": foreign,
}
if "loupe.migrations" in sys.modules:
    result["migrations_dir"] = str(sys.modules["loupe.migrations"].migrations_dir())


class Context:
    function_name = "HealthFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:HealthFunction"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/HealthFunction"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self):
        return 29000


if invoke == "invoke":
    result["response"] = lambda_handler(json.load(sys.stdin), Context())
sys.stdout.write("\n" + MARKER + json.dumps(result) + "\n")
""".replace("MARKER", repr(RESULT_MARKER))


def find_sam() -> Path:
    found = sam_tools.find_sam()
    if found is None:
        pytest.fail(
            "SAM CLI not found (.venv-sam/bin/sam or `sam` on PATH): run `make validate` to install it"
        )
    return found


def find_python312() -> Path:
    found = sam_tools.find_python312()
    if found is None:
        pytest.fail("no working python3.12 found (sam build needs the Lambda runtime's Python on PATH)")
    return found


@dataclass(frozen=True)
class Build:
    directory: Path
    template: dict[str, Any]
    python: Path
    seconds: float

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def functions(self) -> dict[str, dict[str, Any]]:
        return {
            name: resource["Properties"]
            for name, resource in self.resources.items()
            if resource["Type"] == "AWS::Serverless::Function"
        }

    def layer_dirs(self, properties: Mapping[str, Any]) -> list[Path]:
        """The built `python/` folders of a function's layers: the Globals' ones, then its own."""
        globals_function = self.template.get("Globals", {}).get("Function", {})
        layers = [*globals_function.get("Layers", []), *properties.get("Layers", [])]
        dirs = []
        for layer in layers:
            assert isinstance(layer, dict), f"layer {layer!r} is not a reference to the template's layer"
            content_uri = self.resources[layer["Ref"]]["Properties"]["ContentUri"]
            dirs.append(self.directory / content_uri / "python")
        return dirs

    def environment(self, properties: Mapping[str, Any]) -> dict[str, str]:
        """The function's literal environment variables (Globals, then its own); references are skipped."""
        globals_function = self.template.get("Globals", {}).get("Function", {})
        env: dict[str, str] = {}
        for source in (globals_function, properties):
            for name, value in source.get("Environment", {}).get("Variables", {}).items():
                if isinstance(value, str):
                    env[name] = value
        return env


@pytest.fixture(scope="module")
def sam_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """`sam build` once for the module, into a temporary folder, timed."""
    sam = find_sam()
    python = find_python312()
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    started = time.monotonic()
    completed = subprocess.run(
        [str(sam), "build", "--template", str(TEMPLATE), "--build-dir", str(build_dir)],
        cwd=REPO,
        env=sam_tools.sam_environment(python),
        capture_output=True,
        text=True,
        timeout=SAM_TIMEOUT_SECONDS,
        check=False,
    )
    seconds = time.monotonic() - started
    assert completed.returncode == 0, f"sam build failed:\n{completed.stdout}\n{completed.stderr}"
    if seconds > SLOW_BUILD_SECONDS:
        warnings.warn(f"sam build took {seconds:.0f} s (over {SLOW_BUILD_SECONDS} s)", stacklevel=1)
    built = yaml.safe_load((build_dir / "template.yaml").read_text(encoding="utf-8"))
    return Build(directory=build_dir, template=built, python=python, seconds=seconds)


def run_isolated(
    build: Build,
    name: str,
    properties: Mapping[str, Any],
    event: dict[str, Any] | None = None,
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Imports (and with `event`, invokes) a built function's handler in a fresh isolated Python 3.12,
    with the template's literal variables and either a placeholder database and signing key or, when
    given, `environment` instead of them."""
    function_dir = build.directory / properties["CodeUri"]
    layer_dirs = build.layer_dirs(properties)
    env = build.environment(properties)
    env.update(
        LOUPE_ENV="test",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",
        LAMBDA_TASK_ROOT=str(function_dir),
        PYTHONDONTWRITEBYTECODE="1",
        LANG="C.UTF-8",
    )
    if environment is None:
        env.update(
            LOUPE_JWT_SECRET=secrets.token_urlsafe(36), DATABASE_URL="postgresql://u:p@127.0.0.1:1/loupe"
        )
    else:
        env.update(environment)
    completed = subprocess.run(
        [
            str(build.python),
            "-I",
            "-S",
            "-c",
            ISOLATED_SCRIPT,
            str(function_dir),
            json.dumps([str(path) for path in layer_dirs]),
            properties["Handler"],
            "invoke" if event is not None else "import",
        ],
        input=json.dumps(event) if event is not None else "",
        cwd=build.directory.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = f"{name} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
    assert completed.returncode == 0, output
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    assert len(lines) == 1, output
    result: dict[str, Any] = json.loads(lines[0].removeprefix(RESULT_MARKER))
    return result


def test_sam_validate_lint_is_clean() -> None:
    completed = subprocess.run(
        [str(find_sam()), "validate", "--lint", "--template", str(TEMPLATE)],
        cwd=REPO,
        env=sam_tools.sam_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = f"{completed.stdout}\n{completed.stderr}"
    assert completed.returncode == 0, output
    assert "is a valid SAM Template" in output, output


def test_layer_holds_loupe_and_its_pinned_dependencies(sam_build: Build) -> None:
    layers = {
        name: sam_build.directory / resource["Properties"]["ContentUri"] / "python"
        for name, resource in sam_build.resources.items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    }
    assert set(layers) == {"LoupeLayer", "ExportLayer", "RenderLayer"}
    # The export function's own layer holds DuckDB (Parquet), which the shared layer leaves out (ADR 9);
    # the render function's holds vl-convert (ADR 19).
    assert (layers["ExportLayer"] / "duckdb" / "__init__.py").is_file()
    assert not (layers["LoupeLayer"] / "duckdb").exists()
    assert (layers["RenderLayer"] / "vl_convert" / "__init__.py").is_file()
    assert not (layers["LoupeLayer"] / "vl_convert").exists()
    python = layers["LoupeLayer"]
    assert (python / "loupe" / "__init__.py").is_file()
    assert (python / "loupe" / "migrations.py").is_file()
    installed = {
        dist.name.removesuffix(".dist-info").lower().replace("_", "-") for dist in python.glob("*.dist-info")
    }
    requirements = (REPO / "layers" / "loupe" / "requirements.txt").read_text(encoding="utf-8")
    for line in requirements.splitlines():
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        name, _, version = requirement.partition("==")
        name = name.split("[", 1)[0].lower().replace("_", "-")
        assert f"{name}-{version}" in installed, f"{requirement} missing from the built layer"


def test_layer_ships_bytecode_the_runtime_uses_without_checking_sources(sam_build: Build) -> None:
    """Lambda's /opt is read-only: a module without a .pyc there is compiled again at every cold start."""
    python = sam_build.directory / "LoupeLayer" / "python"
    sources = [path for path in python.rglob("*.py") if "__pycache__" not in path.parts]
    assert len(sources) > 1000, "the layer holds fewer modules than Loupe and its dependencies"
    missing = []
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        if not compiled.is_file():
            missing.append(str(source.relative_to(python)))
            continue
        # PEP 552: flags 0b01 mark hash-based bytecode whose source is never checked.
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, compiled
    assert missing == [], f"{len(missing)} modules without bytecode, e.g. {missing[:5]}"


def test_every_function_imports_from_its_build_folder_and_the_layer(sam_build: Build) -> None:
    functions = sam_build.functions()
    assert {"HealthFunction", "AuthFunction", "MigratorFunction"} <= set(functions)
    for name, properties in functions.items():
        function_dir = sam_build.directory / properties["CodeUri"]
        assert function_dir.is_dir(), f"{name}: no build folder {function_dir}"
        assert any(function_dir.iterdir()), f"{name}: empty build folder"
        result = run_isolated(sam_build, name, properties)
        assert result["version"] == [3, 12]
        assert not [entry for entry in result["stdlib"] if "-packages" in entry], result["stdlib"]
        assert result["callable"], f"{name}: {properties['Handler']} is not callable"
        assert result["foreign_modules"] == [], f"{name} imported from outside the artifact"
        module_file = Path(result["module_file"])
        assert module_file.is_relative_to(function_dir), module_file
        assert (function_dir / module_file.name).is_file()
        if name == "MigratorFunction":
            # The SQL files are in the function's package; the runner finds them under $LAMBDA_TASK_ROOT.
            assert Path(result["migrations_dir"]) == function_dir / "migrations"
            assert sorted((function_dir / "migrations").glob("*.sql")), (
                "no migrations in the migrator's package"
            )


def test_built_health_function_answers_liveness(sam_build: Build) -> None:
    properties = sam_build.functions()["HealthFunction"]
    event = rest_api_event("GET", "/api/v1/health", headers={"Accept": "application/json"}, stage="dev")
    result = run_isolated(sam_build, "HealthFunction", properties, event)
    response = result["response"]
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == {"status": "ok"}


# A request each HTTP function answers from the database for a signed-in admin (GET of a list or of
# the caller's own resource); the other functions get their event source's event.
HTTP_REQUESTS = {
    "HealthFunction": "/api/v1/health/ready",
    "AuthFunction": "/api/v1/auth/me",
    "OrganizationsFunction": "/api/v1/organizations/current",
    "ApiKeysFunction": "/api/v1/api-keys",
    "DatasourcesFunction": "/api/v1/datasources",
    "QueriesFunction": "/api/v1/queries",
    "VisualizationsFunction": "/api/v1/visualizations",
    "DashboardsFunction": "/api/v1/dashboards",
    "SchedulesFunction": "/api/v1/schedules",
    "CanvasesFunction": "/api/v1/canvases",
    "BundlesFunction": "/api/v1/bundles",
    "AuditFunction": "/api/v1/audit-events",
    "RunsFunction": "/api/v1/runs/6e8a0c2e-4f6b-4d8f-a0c2-e4f6a8b0c2d4",
}
SCHEDULED = {"SchedulerFunction", "ReaperFunction", "JanitorFunction"}


def template_variables(
    build: Build, properties: Mapping[str, Any], local_values: Mapping[str, str]
) -> dict[str, str]:
    """The function's variables (Globals, then its own) whose values are the queues, bucket or topic,
    as they exist locally: only what the template gives this function, so a variable it lacks in AWS
    is missing here too."""
    globals_function = build.template.get("Globals", {}).get("Function", {})
    variables: dict[str, str] = {}
    for source in (globals_function, properties):
        for name, value in source.get("Environment", {}).get("Variables", {}).items():
            if isinstance(value, dict):
                target = value.get("Ref") or value.get("Fn::GetAtt")
                resource = target[0] if isinstance(target, list) else str(target).split(".")[0]
                if resource in local_values:
                    variables[name] = local_values[resource]
    return variables


def reads_the_signing_key(properties: Mapping[str, Any]) -> bool:
    """Whether the function may read the JWT signing secret (its policies name it)."""
    return "JwtSigningSecret" in json.dumps(properties.get("Policies"))


def _sqs_message(queue_url: str, aws_endpoint: str, key: str = "run_id") -> dict[str, Any]:
    sqs = aws_client("sqs", aws_endpoint)
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=json.dumps({key: "6e8a0c2e-4f6b-4d8f-a0c2-e4f6a8b0c2d4"})
    )
    [message] = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"])["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs_event([message], arn)


def test_every_built_function_serves_a_request_or_event_against_the_database_and_moto(
    sam_build: Build, clean_db: str, register: Any, api: Any
) -> None:
    admin = register()
    # The render function draws a page from its own layer's vl-convert: a dashboard of one text tile.
    board = {
        "name": "Built",
        "tiles": [{"text": "Drawn by the built layer", "x": 0, "y": 0, "w": 12, "h": 2}],
    }
    dashboard = api.post("/api/v1/dashboards", json_body=board, token=admin.access_token)
    assert dashboard.status == 201, dashboard.body
    http_requests = {**HTTP_REQUESTS, "RenderFunction": f"/api/v1/dashboards/{dashboard.json()['id']}/render"}
    with moto_server(0) as aws_endpoint:
        resources = create_runs_resources(aws_endpoint)
        # What each resource is locally, for the variables the template sets from them.
        local_values = {
            "RunsQueue": resources["LOUPE_RUNS_QUEUE_URL"],
            "ScheduledRunsQueue": resources["LOUPE_SCHEDULED_RUNS_QUEUE_URL"],
            "ExportsQueue": resources["LOUPE_EXPORTS_QUEUE_URL"],
            "ResultsBucket": resources["LOUPE_RESULTS_BUCKET"],
            "AlertsTopic": resources["LOUPE_ALERTS_TOPIC_ARN"],
        }
        shared = {
            "DATABASE_URL": clean_db,
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        served: dict[str, Any] = {}
        for name, properties in sam_build.functions().items():
            if name in http_requests:
                path = http_requests[name]
                found = find_route("GET", path)
                assert found is not None, path
                route, parameters = found
                event = rest_api_event(
                    "GET",
                    path,
                    resource=route.path,
                    path_parameters=parameters,
                    headers={
                        "Authorization": f"Bearer {admin.access_token}",
                        "Accept": "image/png" if name == "RenderFunction" else "application/json",
                    },
                    stage="dev",
                )
            elif name in SCHEDULED:
                event = scheduled_event(f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{name}")
            elif name == "RunnerFunction":
                event = _sqs_message(resources["LOUPE_RUNS_QUEUE_URL"], aws_endpoint)
            elif name == "ExportFunction":
                event = _sqs_message(resources["LOUPE_EXPORTS_QUEUE_URL"], aws_endpoint, "export_id")
            elif name == "DeadLetterFunction":
                event = _sqs_message(resources["LOUPE_LOCAL_DEAD_LETTER_QUEUE_URL"], aws_endpoint)
            else:
                assert name == "MigratorFunction", f"{name}: no event for it in this test"
                event = {}
            environment = {**shared, **template_variables(sam_build, properties, local_values)}
            if reads_the_signing_key(properties):
                environment["LOUPE_JWT_SECRET"] = os.environ["LOUPE_JWT_SECRET"]
            served[name] = run_isolated(sam_build, name, properties, event, environment)["response"]

    assert set(served) == set(sam_build.functions())
    for name in HTTP_REQUESTS:
        response = served[name]
        expected = 404 if name == "RunsFunction" else 200
        assert response["statusCode"] == expected, (name, response)
        assert json.loads(response["body"]), name
    ready = json.loads(served["HealthFunction"]["body"])
    assert ready["checks"] == {"database": "ok", "queue": "ok", "bucket": "ok"}
    assert json.loads(served["AuthFunction"]["body"])["email"] == admin.email
    # The run in the message does not exist (yet): handed back for a later delivery, not lost.
    assert len(served["RunnerFunction"]["batchItemFailures"]) == 1
    assert len(served["ExportFunction"]["batchItemFailures"]) == 1
    assert served["DeadLetterFunction"] == {"batchItemFailures": []}
    assert served["MigratorFunction"] == {"applied": []}
    picture = served["RenderFunction"]
    assert (picture["statusCode"], picture["isBase64Encoded"]) == (200, True), picture
    assert base64.b64decode(picture["body"]).startswith(b"\x89PNG")
    assert served["SchedulerFunction"] == {
        "fired": 0,
        "sent": 0,
        "alerts_delivered": 0,
        "reports_fired": 0,
        "report_attempts": 0,
    }
    assert served["ReaperFunction"] == {"requeued": 0, "failed": 0, "cancelled": 0}
    assert set(served["JanitorFunction"]) >= {"runs_deleted", "results_expired"}
