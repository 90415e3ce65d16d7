"""Builds the Lambda entry point of a deploy-time CloudFormation custom resource (the migrations): Create
and Update do the work, Delete leaves things as they are, and CloudFormation always gets an answer."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe.deadline import Overran, call_within
from loupe.entry.observed import Handler, observed
from loupe.observability import logger

# Kept back from the invocation's time to answer CloudFormation after work that overran.
ANSWER_MARGIN_SECONDS = 15


def custom_resource_function(
    deploy: Callable[[], Mapping[str, str]],
    *,
    what: str,
    physical_resource_id: str,
    invoked: Callable[[], dict[str, Any]],
) -> Handler[dict[str, Any]]:
    """The decorated `lambda_handler` of a custom resource whose Create and Update call `deploy` (its
    result is the resource's `Data`). Invoked directly, not by CloudFormation, it returns `invoked()`.

    Any failure of `deploy`, or `deploy` still running ANSWER_MARGIN_SECONDS before the invocation's time
    is up, is answered FAILED (naming `what`), so CloudFormation rolls back at once instead of waiting an
    hour for an answer that would never come."""

    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if "RequestType" not in event or "ResponseURL" not in event:
            return invoked()
        status, reason, data = "SUCCESS", "", {}
        if event["RequestType"] in ("Create", "Update"):
            seconds = context.get_remaining_time_in_millis() / 1000 - ANSWER_MARGIN_SECONDS
            try:
                data = dict(call_within(max(seconds, 1.0), deploy, what))
            except Overran:
                status, reason = (
                    "FAILED",
                    f"{what} did not finish within {seconds:.0f} s (see the function's log)",
                )
            except Exception as error:  # any failure fails the deploy, with its type in the stack events
                logger.error(f"{what} failed", exc_info=error)
                status, reason = "FAILED", f"{what} failed: {type(error).__name__} (see the function's log)"
        answer = {
            "Status": status,
            "Reason": reason or "ok",
            "PhysicalResourceId": event.get("PhysicalResourceId") or physical_resource_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
        _send(event["ResponseURL"], answer)
        return answer

    return observed(lambda_handler)


def _send(response_url: str, answer: dict[str, Any]) -> None:
    body = json.dumps(answer).encode()
    # The response URL is a presigned S3 URL; CloudFormation expects an empty content type.
    request = urllib.request.Request(  # noqa: S310  # CloudFormation's https URL
        response_url,
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  # as above
        response.read()
