"""template.yaml's edge protections, read from the template itself: stage throttling, the WAF's per-IP
rate rule attached to the API stage, and the mail sender's least privilege."""

from __future__ import annotations

import json
from typing import Any

from infra.local.gateway import render_template
from infra.local.template_routes import template
from loupe.api.resolver import SECURITY_HEADERS


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
    assert template()["Parameters"]["WafRateLimitPerMinute"]["Default"] == 3000
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    [association] = resources_of("AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {"GetAtt": "WebAcl.Arn"}
    assert "/restapis/${LoupeApi}/stages/" in association["Properties"]["ResourceArn"]["Sub"]


def test_only_the_account_mail_functions_may_send_mail_and_only_as_the_sender() -> None:
    # Password resets (auth), invitations (organizations) and destinations' mail (a test from schedules,
    # alerts from the runner and the scheduler) are the only mail Loupe sends.
    senders = [
        name
        for name, resource in resources_of("AWS::Serverless::Function").items()
        if "ses:SendEmail" in str(resource["Properties"].get("Policies"))
    ]
    assert senders == [
        "AuthFunction",
        "OrganizationsFunction",
        "SchedulesFunction",
        "RunnerFunction",
        "SchedulerFunction",
    ]
    for name in senders:
        assert "identity/${MailFromAddress}" in str(template()["Resources"][name]["Properties"]["Policies"])


# Every response type API Gateway (REST) can answer itself, from its GatewayResponse documentation.
GATEWAY_RESPONSE_TYPES = {
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
    "ACCESS_DENIED": "403",
    "API_CONFIGURATION_ERROR": "500",
    "AUTHORIZER_CONFIGURATION_ERROR": "500",
    "AUTHORIZER_FAILURE": "500",
    "BAD_REQUEST_PARAMETERS": "400",
    "BAD_REQUEST_BODY": "400",
    "EXPIRED_TOKEN": "401",
    "INTEGRATION_FAILURE": "502",
    "INTEGRATION_TIMEOUT": "504",
    "INVALID_API_KEY": "403",
    "INVALID_SIGNATURE": "403",
    "MISSING_AUTHENTICATION_TOKEN": "404",
    "QUOTA_EXCEEDED": "429",
    "REQUEST_TOO_LARGE": "413",
    "RESOURCE_NOT_FOUND": "404",
    "THROTTLED": "429",
    "UNAUTHORIZED": "401",
    "UNSUPPORTED_MEDIA_TYPE": "415",
    "WAF_FILTERED": "403",
}
CODE_OF_STATUS = {
    "400": "bad_request",
    "401": "unauthorized",
    "403": "forbidden",
    "404": "not_found",
    "413": "payload_too_large",
    "415": "unsupported_media_type",
    "429": "rate_limited",
    "500": "internal_error",
    "502": "bad_gateway",
    "504": "gateway_timeout",
}


def test_every_gateway_response_has_the_envelope_the_security_headers_and_cors() -> None:
    [api] = resources_of("AWS::Serverless::Api").values()
    responses = api["Properties"]["GatewayResponses"]
    assert set(responses) == set(GATEWAY_RESPONSE_TYPES)
    for kind, response in responses.items():
        assert response.get("StatusCode") == GATEWAY_RESPONSE_TYPES[kind], kind
        body = render_template(
            response["ResponseTemplates"]["application/json"], 'a "quoted" message', "req-1"
        )
        error = json.loads(body)["error"]
        expected_code = CODE_OF_STATUS.get(
            response.get("StatusCode") or "", {"DEFAULT_4XX": "bad_request"}.get(kind)
        )
        assert error["code"] == (expected_code or "internal_error"), kind
        assert error["message"], kind
        assert error["error_id"] == "req-1", kind
        headers = response["ResponseParameters"]["Headers"]
        assert headers["X-Request-Id"] == "context.requestId", kind
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == f"'{value}'", (kind, name)
        assert headers["Access-Control-Allow-Origin"] == "'*'", kind
        assert "Retry-After" in headers["Access-Control-Expose-Headers"], kind
    for kind in ("THROTTLED", "QUOTA_EXCEEDED"):
        assert responses[kind]["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"


def test_the_waf_block_carries_the_security_headers_and_cors() -> None:
    [acl] = resources_of("AWS::WAFv2::WebACL").values()
    [rule] = acl["Properties"]["Rules"]
    headers = {
        header["Name"]: header["Value"]
        for header in rule["Action"]["Block"]["CustomResponse"]["ResponseHeaders"]
    }
    assert {name: headers[name] for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert headers["Access-Control-Allow-Origin"] == "*"
    body = json.loads(acl["Properties"]["CustomResponseBodies"]["RateLimited"]["Content"])
    assert body["error"]["code"] == "rate_limited"
