"""template.yaml's edge protections, read from the template itself: stage throttling, the WAF's per-IP
rate rule attached to the API stage, and the mail sender's least privilege."""

from __future__ import annotations

from typing import Any

from infra.local.template_routes import template


def resources_of(kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template()["Resources"].items() if resource["Type"] == kind}


def test_every_route_of_the_stage_is_throttled() -> None:
    [api] = resources_of("AWS::Serverless::Api").values()
    [settings] = api["Properties"]["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    parameters = template()["Parameters"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}
    assert parameters["ThrottleRateLimit"]["Default"] > 0
    assert parameters["ThrottleBurstLimit"]["Default"] >= parameters["ThrottleRateLimit"]["Default"]


def test_the_waf_limits_each_address_per_minute_and_guards_the_api_stage() -> None:
    [acl] = resources_of("AWS::WAFv2::WebACL").values()
    properties = acl["Properties"]
    assert properties["Scope"] == "REGIONAL"
    [rule] = [rule for rule in properties["Rules"] if "RateBasedStatement" in rule["Statement"]]
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    assert statement["EvaluationWindowSec"] == 60
    assert statement["Limit"] == {"Ref": "WafRateLimitPerMinute"}
    assert template()["Parameters"]["WafRateLimitPerMinute"]["Default"] == 100
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    [association] = resources_of("AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"GetAtt": "WebAcl.Arn"}
    assert "/restapis/${LoupeApi}/stages/" in association["Properties"]["ResourceArn"]["Sub"]


def test_only_the_auth_function_may_send_mail_and_only_as_the_sender() -> None:
    senders = [
        name
        for name, resource in resources_of("AWS::Serverless::Function").items()
        if "ses:SendEmail" in str(resource["Properties"].get("Policies"))
    ]
    assert senders == ["AuthFunction"]
    assert "identity/${MailFromAddress}" in str(
        template()["Resources"]["AuthFunction"]["Properties"]["Policies"]
    )
