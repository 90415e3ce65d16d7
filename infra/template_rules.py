"""What CloudFormation would say of a set of parameters before any deploy: template.yaml's parameter
constraints, its `Rules` and its `Conditions`, evaluated here (make deploy and the tests use it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.local.template_routes import template

# The functions CloudFormation allows in Rules; a rule using another one fails the deploy.
RULE_FUNCTIONS = frozenset({"And", "Or", "Not", "Equals", "Contains", "EachMemberEquals", "EachMemberIn"})
CONDITION_FUNCTIONS = frozenset({"And", "Or", "Not", "Equals", "Condition", "Join", "Select"})

Value = str | list[str]


class TemplateError(ValueError):
    """The template uses what this evaluator (and CloudFormation in that place) does not accept."""


@dataclass(frozen=True)
class Verdict:
    """Every refusal CloudFormation would give (empty: accepted), and the conditions' values."""

    refusals: list[str]
    conditions: dict[str, bool]

    @property
    def accepted(self) -> bool:
        return not self.refusals


def _function(node: Mapping[str, Any]) -> tuple[str, Any]:
    if len(node) != 1:
        raise TemplateError(f"not one intrinsic function: {sorted(node)}")
    ((name, argument),) = node.items()
    return name.removeprefix("Fn::"), argument


class _Evaluator:
    def __init__(self, values: Mapping[str, Value], conditions: Mapping[str, Any]) -> None:
        self.values = values
        self.conditions = conditions
        self.known: dict[str, bool] = {}

    def value(self, node: Any, allowed: frozenset[str]) -> Any:
        if isinstance(node, str | int | float):
            return str(node)
        if isinstance(node, list):
            return [self.value(item, allowed) for item in node]
        if not isinstance(node, dict):
            raise TemplateError(f"unexpected {type(node).__name__} in a rule or condition")
        name, argument = _function(node)
        if name == "Ref":
            if argument not in self.values:
                raise TemplateError(f"Ref to {argument}, which is not a parameter")
            return self.values[argument]
        if name not in allowed:
            raise TemplateError(f"Fn::{name} is not allowed here")
        arguments = argument if isinstance(argument, list) else [argument]
        if name == "Condition":
            return self.condition(str(argument))
        evaluated = [self.value(item, allowed) for item in arguments]
        if name == "And":
            return all(evaluated)
        if name == "Or":
            return any(evaluated)
        if name == "Not":
            return not evaluated[0]
        if name == "Equals":
            return _text(evaluated[0]) == _text(evaluated[1])
        if name == "Contains":
            return _text(evaluated[1]) in _list(evaluated[0])
        if name == "EachMemberEquals":
            return all(member == _text(evaluated[1]) for member in _list(evaluated[0]))
        if name == "EachMemberIn":
            return all(member in _list(evaluated[1]) for member in _list(evaluated[0]))
        if name == "Join":
            return _text(evaluated[0]).join(_list(evaluated[1]))
        return _list(evaluated[1])[int(evaluated[0])]  # Select

    def condition(self, name: str) -> bool:
        if name not in self.known:
            if name not in self.conditions:
                raise TemplateError(f"no condition {name}")
            self.known[name] = bool(self.value(self.conditions[name], CONDITION_FUNCTIONS))
        return self.known[name]


def _text(value: Any) -> str:
    if isinstance(value, list):
        raise TemplateError("a list where a string is expected")
    return str(value)


def _list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TemplateError("a string where a list is expected")
    return value


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _parameter_refusals(name: str, spec: Mapping[str, Any], text: str) -> list[str]:
    kind = spec["Type"]
    if kind == "Number":
        number = _number(text)
        if number is None:
            return [f"{name}={text!r} is not a number"]
        refusals = []
        if "MinValue" in spec and number < float(spec["MinValue"]):
            refusals.append(f"{name}={text} is below its MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            refusals.append(f"{name}={text} is above its MaxValue {spec['MaxValue']}")
        if "AllowedValues" in spec and number not in {float(allowed) for allowed in spec["AllowedValues"]}:
            refusals.append(f"{name}={text} is not one of {spec['AllowedValues']}")
        return refusals
    if kind not in ("String", "CommaDelimitedList"):
        raise TemplateError(f"parameter type {kind} of {name} is not evaluated here")
    if "AllowedValues" in spec and text not in [str(allowed) for allowed in spec["AllowedValues"]]:
        return [f"{name}={text!r} is not one of {spec['AllowedValues']}"]
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], text):
        return [f"{name}={text!r} does not match {spec['AllowedPattern']}"]
    return []


def evaluate(parameters: Mapping[str, str], document: Mapping[str, Any] | None = None) -> Verdict:
    """Check `parameters` (a stack's overrides) as CloudFormation would: names, types, bounds, then
    each rule whose condition holds; evaluate every condition."""
    document = document or template()
    specs: Mapping[str, Mapping[str, Any]] = document["Parameters"]
    refusals = [f"{name} is not a parameter of the template" for name in parameters if name not in specs]
    values: dict[str, Value] = {}
    for name, spec in specs.items():
        if name not in parameters and "Default" not in spec:
            refusals.append(f"{name} has no default and was not given")
            continue
        text = parameters.get(name, str(spec.get("Default", "")))
        refusals.extend(_parameter_refusals(name, spec, text))
        values[name] = text.split(",") if spec["Type"] == "CommaDelimitedList" else text
    evaluator = _Evaluator(values, document.get("Conditions", {}))
    for rule_name, rule in document.get("Rules", {}).items():
        applies = "RuleCondition" not in rule or evaluator.value(rule["RuleCondition"], RULE_FUNCTIONS)
        if not applies:
            continue
        for assertion in rule["Assertions"]:
            if not evaluator.value(assertion["Assert"], RULE_FUNCTIONS):
                description = " ".join(str(assertion.get("AssertDescription", "")).split())
                refusals.append(f"rule {rule_name}: {description}")
    conditions = {name: evaluator.condition(name) for name in document.get("Conditions", {})}
    return Verdict(refusals=refusals, conditions=conditions)
