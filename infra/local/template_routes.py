"""Reads template.yaml: which function serves which API path, as API Gateway would route it."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# What a process of the local stack needs on its path: the layer's package and this repository.
PYTHON_PATH = os.pathsep.join((str(ROOT / "layers" / "loupe"), str(ROOT)))


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads the intrinsic-function tags (!Ref, !Sub, !GetAtt...) as plain values."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {tag_suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {tag_suffix: loader.construct_sequence(node)}
    assert isinstance(node, yaml.MappingNode)
    return {tag_suffix: loader.construct_mapping(node)}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class ApiRoute:
    """One `Api` event of a function: a path (with `{param}` / `{proxy+}`) and a method or ANY."""

    function: str
    path: str
    method: str
    code_uri: Path
    handler: str

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{[^/]+?\\\+\\\}", r"(?P<proxy>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")

    @property
    def specificity(self) -> tuple[int, int, int]:
        # API Gateway prefers literal segments over {param}, and {param} over {proxy+}.
        segments = self.path.strip("/").split("/")
        literal = sum(1 for segment in segments if not segment.startswith("{"))
        return (literal, len(segments), 0 if "+}" in self.path else 1)

    def matches(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method.upper()):
            return None
        found = self.pattern.match(path)
        return found.groupdict() if found else None


@cache
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506
    return loaded


def functions() -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_limits(function: str) -> tuple[int, int]:
    """A function's timeout in seconds and memory in MB, from its properties or the template's Globals."""
    globals_ = (template().get("Globals") or {}).get("Function") or {}
    properties = functions().get(function) or {}
    timeout = int(properties.get("Timeout") or globals_.get("Timeout") or 3)
    memory = int(properties.get("MemorySize") or globals_.get("MemorySize") or 128)
    return timeout, memory


def api_routes() -> list[ApiRoute]:
    routes = []
    for name, properties in functions().items():
        for event in (properties.get("Events") or {}).values():
            if event["Type"] != "Api":
                continue
            routes.append(
                ApiRoute(
                    function=name,
                    path=event["Properties"]["Path"],
                    method=event["Properties"]["Method"].upper(),
                    code_uri=ROOT / properties["CodeUri"],
                    handler=properties["Handler"],
                )
            )
    return sorted(routes, key=lambda route: route.specificity, reverse=True)


def find_route(method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
    for route in api_routes():
        parameters = route.matches(method, path)
        if parameters is not None:
            return route, parameters
    return None


_loaded: dict[str, ModuleType] = {}


def load_handler(function: str) -> Any:
    """Import a function's handler module from its CodeUri, as Lambda would, and return the handler."""
    properties = functions()[function]
    module_path, handler_name = properties["Handler"].rsplit(".", 1)
    if function not in _loaded:
        code_uri = ROOT / properties["CodeUri"]
        source = code_uri / (module_path.replace(".", "/") + ".py")
        spec = importlib.util.spec_from_file_location(f"loupe_function_{function}", source)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _loaded[function] = module
    return getattr(_loaded[function], handler_name)
