"""template.yaml read as data: what a production stack must declare (issue 7): logs kept for a set
time, every queue with a dead-letter queue, the bucket locked down, least-privilege IAM, an alarm for
each operational signal, and the outputs operators need."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.template_routes import template

TEMPLATE = template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in RESOURCES.items() if resource["Type"] == kind}


FUNCTIONS = {name: resource["Properties"] for name, resource in of_type("AWS::Serverless::Function").items()}


def statements(function: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Effect" in node and "Action" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(FUNCTIONS[function].get("Policies"))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_has_a_log_group_with_retention(function: str) -> None:
    groups = [
        resource["Properties"]
        for resource in of_type("AWS::Logs::LogGroup").values()
        if resource["Properties"]["LogGroupName"] == {"Sub": f"/aws/lambda/${{{function}}}"}
    ]
    assert len(groups) == 1, function
    assert groups[0]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_queue_has_a_dead_letter_queue() -> None:
    queues = of_type("AWS::SQS::Queue")
    dead_letter_queues = {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["GetAtt"].split(".")[0]
        for queue in queues.values()
        if "RedrivePolicy" in queue["Properties"]
    }
    for name, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get("KmsMasterKeyId"), (
            name
        )
        if name not in dead_letter_queues:
            assert "RedrivePolicy" in queue["Properties"], f"{name} has no dead-letter queue"
    assert dead_letter_queues == {
        "RunsDeadLetterQueue",
        "ScheduledRunsDeadLetterQueue",
        "ExportsDeadLetterQueue",
    }


def test_the_results_bucket_is_encrypted_private_tls_only_and_expires() -> None:
    [bucket] = of_type("AWS::S3::Bucket").values()
    properties = bucket["Properties"]
    [rule] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"GetAtt": "CredentialsKey.Arn"}
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert properties["LifecycleConfiguration"]["Rules"][0]["Status"] == "Enabled"
    [policy] = of_type("AWS::S3::BucketPolicy").values()
    [tls] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "TlsOnly"]
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert RESOURCES["CredentialsKey"]["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_no_function_may_do_everything_to_everything(function: str) -> None:
    for statement in statements(function):
        actions = [str(action) for action in as_list(statement["Action"])]
        resources = as_list(statement.get("Resource"))
        wildcard_action = any(action == "*" or action.endswith(":*") for action in actions)
        assert not (wildcard_action and "*" in resources), (function, statement)
        assert "*" not in actions, (function, statement)


@pytest.mark.parametrize(
    ("function", "queue"),
    [
        ("RunsFunction", "RunsQueue"),
        ("QueriesFunction", "RunsQueue"),
        ("DashboardsFunction", "RunsQueue"),
        ("ReaperFunction", "ScheduledRunsQueue"),
        ("SchedulerFunction", "ScheduledRunsQueue"),
    ],
)
def test_functions_that_queue_runs_know_the_queue_and_may_send(function: str, queue: str) -> None:
    variables = FUNCTIONS[function]["Environment"]["Variables"]
    assert "LOUPE_RUNS_QUEUE_URL" in variables or "LOUPE_SCHEDULED_RUNS_QUEUE_URL" in variables
    senders = [s for s in statements(function) if "sqs:SendMessage" in as_list(s["Action"])]
    assert any({"GetAtt": f"{queue}.Arn"} in as_list(s["Resource"]) for s in senders), function


@pytest.mark.parametrize(
    "function", ["SchedulerFunction", "JanitorFunction", "MigratorFunction", "RunnerFunction"]
)
def test_functions_that_must_not_swamp_the_database_have_reserved_concurrency(function: str) -> None:
    assert "ReservedConcurrentExecutions" in FUNCTIONS[function]


def alarms() -> dict[str, dict[str, Any]]:
    return {name: resource["Properties"] for name, resource in of_type("AWS::CloudWatch::Alarm").items()}


@pytest.mark.parametrize(
    ("signal", "namespace", "metric", "dimension"),
    [
        ("API 5xx rate", "AWS/ApiGateway", "5XXError", None),
        ("p99 latency", "AWS/ApiGateway", "Latency", None),
        ("runs DLQ depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "RunsDeadLetterQueue"),
        (
            "scheduled DLQ depth",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "ScheduledRunsDeadLetterQueue",
        ),
        ("runner errors", "AWS/Lambda", "Errors", "RunnerFunction"),
        ("scheduler failures", "AWS/Lambda", "Errors", "SchedulerFunction"),
        ("scheduler missed ticks", "AWS/Lambda", "Invocations", "SchedulerFunction"),
        ("janitor failures", "AWS/Lambda", "Errors", "JanitorFunction"),
        ("database connections", "AWS/RDS", "DatabaseConnections", None),
        ("unhandled errors", "Loupe", "UnhandledErrors", None),
    ],
)
def test_an_alarm_for_each_operational_signal(
    signal: str, namespace: str, metric: str, dimension: str | None
) -> None:
    matching = [
        alarm
        for alarm in alarms().values()
        if alarm["Namespace"] == namespace
        and alarm["MetricName"] == metric
        and (dimension is None or dimension in _dimension_sources(alarm))
    ]
    assert len(matching) == 1, signal
    assert matching[0]["AlarmActions"] == [{"Ref": "OpsAlarmsTopic"}], signal


def _dimension_sources(alarm: dict[str, Any]) -> set[str]:
    """The resources an alarm's dimensions name (`RunnerFunction` for `!Ref RunnerFunction`)."""
    names = set()
    for dimension in alarm.get("Dimensions") or []:
        value = dimension["Value"]
        if isinstance(value, dict):
            names.add(str(value.get("Ref") or value.get("GetAtt", "")).split(".")[0])
    return names


def test_the_p99_alarm_uses_the_p99_statistic() -> None:
    [latency] = [alarm for alarm in alarms().values() if alarm["MetricName"] == "Latency"]
    assert latency["ExtendedStatistic"] == "p99"


def test_a_dashboard_and_the_outputs_operators_need() -> None:
    assert len(of_type("AWS::CloudWatch::Dashboard")) == 1
    outputs = TEMPLATE["Outputs"]
    for name in (
        "ApiUrl",
        "RunsQueueName",
        "ScheduledRunsQueueName",
        "RunsDeadLetterQueueName",
        "ResultsBucketName",
        "OpsAlarmsTopicArn",
    ):
        assert name in outputs, name


def test_the_deploy_migrates_through_the_migrator() -> None:
    [migrations] = of_type("AWS::CloudFormation::CustomResource").values()
    assert migrations["Properties"]["ServiceToken"] == {"GetAtt": "MigratorFunction.Arn"}
    assert FUNCTIONS["MigratorFunction"]["AutoPublishAlias"]


def test_the_created_database_is_encrypted_backed_up_pauses_or_sits_behind_a_tls_proxy() -> None:
    cluster = RESOURCES["DatabaseCluster"]
    properties = cluster["Properties"]
    assert cluster["Condition"] == "CreatesDatabase"
    assert (properties["Engine"], properties["StorageEncrypted"], properties["DeletionProtection"]) == (
        "aurora-postgresql",
        True,
        True,
    )
    scaling = properties["ServerlessV2ScalingConfiguration"]
    assert scaling["MinCapacity"] == {"Ref": "DatabaseMinCapacity"}
    assert scaling["SecondsUntilAutoPause"] == {
        "If": ["PausesDatabase", {"Ref": "DatabaseAutoPauseSeconds"}, {"Ref": "AWS::NoValue"}]
    }
    assert TEMPLATE["Parameters"]["DatabaseMinCapacity"]["Default"] == "0"
    assert properties["BackupRetentionPeriod"] == {"Ref": "DatabaseBackupRetentionDays"}
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert RESOURCES["DatabaseInstance"]["Properties"]["DBInstanceClass"] == "db.serverless"
    proxy = RESOURCES["DatabaseProxy"]["Properties"]
    assert proxy["RequireTLS"] is True
    assert [auth["AuthScheme"] for auth in proxy["Auth"]] == ["SECRETS"]
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["LOUPE_DATABASE_HOST"] == {
        "If": ["CreatesProxy", {"GetAtt": "DatabaseProxy.Endpoint"}, ""]
    }
    assert variables["LOUPE_DB_THROUGH_PROXY"] == {"Ref": "DatabaseThroughProxy"}
    assert RESOURCES["DatabaseProxy"]["Condition"] == "CreatesProxy"
    assert "DatabaseNeedsANetwork" in TEMPLATE["Rules"]


def test_the_dashboard_body_is_json_once_filled_in() -> None:
    import json
    import re

    body = RESOURCES["OpsDashboard"]["Properties"]["DashboardBody"]["Sub"][0]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert len(widgets) >= 6


def test_the_unhandled_errors_alarm_watches_the_total_the_api_emits() -> None:
    [alarm] = [alarm for alarm in alarms().values() if alarm["MetricName"] == "UnhandledErrors"]
    # The resolver emits the total without dimensions (and a copy per fingerprint): they must match.
    assert "Dimensions" not in alarm


def test_cloudwatch_can_publish_to_the_alarm_topic() -> None:
    # A topic under the AWS-managed SNS key cannot receive CloudWatch alarms.
    topic = RESOURCES["OpsAlarmsTopic"].get("Properties") or {}
    assert topic.get("KmsMasterKeyId") != "alias/aws/sns"


def test_the_runner_knows_both_queues_it_hands_messages_back_to() -> None:
    variables = FUNCTIONS["RunnerFunction"]["Environment"]["Variables"]
    assert {"LOUPE_RUNS_QUEUE_URL", "LOUPE_SCHEDULED_RUNS_QUEUE_URL"} <= set(variables)


def test_scheduled_runs_can_never_take_every_runner() -> None:
    import tomllib
    from pathlib import Path

    parameters = TEMPLATE["Parameters"]
    defaults = {
        "RunnerReservedConcurrency": int(parameters["RunnerReservedConcurrency"]["Default"]),
        "ScheduledRunsConcurrency": int(parameters["ScheduledRunsConcurrency"]["Default"]),
    }
    config = tomllib.loads((Path(__file__).resolve().parents[2] / "samconfig.toml").read_text())
    environments = {"defaults": defaults}
    for name in ("dev", "staging", "prod"):
        overrides = dict(
            pair.split("=", 1) for pair in config[name]["deploy"]["parameters"]["parameter_overrides"].split()
        )
        environments[name] = {key: int(overrides.get(key, value)) for key, value in defaults.items()}
    for name, values in environments.items():
        # At most half the runners for schedules: interactive runs always find room.
        assert values["ScheduledRunsConcurrency"] * 2 <= values["RunnerReservedConcurrency"], name


def test_every_function_that_pokes_the_scheduler_may_write_its_mark() -> None:
    """A function whose code reaches loupe.next_tick without the bucket or the grant would skip its poke,
    and work would start up to next_tick.HORIZON late."""
    import grimp

    graph = grimp.build_graph("loupe", "functions")
    poking = []
    for name, function in FUNCTIONS.items():
        module = "functions." + function["CodeUri"].strip("/").split("/")[-1] + ".app"
        if module not in graph.modules or not graph.chain_exists(importer=module, imported="loupe.next_tick"):
            continue
        poking.append(name)
        assert "LOUPE_RESULTS_BUCKET" in function["Environment"]["Variables"], name
        granted = [
            statement
            for statement in statements(name)
            if "s3:PutObject" in statement["Action"] and "/control/*" in json.dumps(statement["Resource"])
        ]
        assert granted, name
        # The bucket encrypts under the credentials key: a write needs a data key from it.
        sealing = [
            statement
            for statement in statements(name)
            if "kms:GenerateDataKey" in statement["Action"]
            and statement["Resource"] == {"GetAtt": "CredentialsKey.Arn"}
        ]
        assert sealing, name
    assert {"SchedulerFunction", "SchedulesFunction", "RunnerFunction", "ReaperFunction"} <= set(poking)
