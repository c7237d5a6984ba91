"""Answers checked against the OpenAPI document: the status is documented for the operation,
the body matches its schema, and the response model dropped nothing the route returned."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import fastapi.routing
import httpx
import jsonschema_rs
import pytest
from fastapi.encoders import jsonable_encoder

JSON = "application/json"


def _matches(template: str, path: str) -> bool:
    want, got = template.split("/"), path.split("/")
    return len(want) == len(got) and all(
        w == g or (w.startswith("{") and bool(g)) for w, g in zip(want, got, strict=True)
    )


@dataclass
class Conformance:
    """Checks answers against ``doc`` and counts what it checked, by operation and status."""

    doc: dict[str, Any]
    seen: set[tuple[str, str, int]] = field(default_factory=set)

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The documented template of ``path`` and its operation; literal segments win."""
        matches = [
            (template.count("{"), template, item[method.lower()])
            for template, item in self.doc["paths"].items()
            if method.lower() in item and _matches(template, path)
        ]
        assert matches, f"{method} {path} is not in the document"
        _, template, op = min(matches, key=lambda m: m[0])
        return template, op

    def check(self, response: httpx.Response) -> httpx.Response:
        """Assert ``response`` is what the document says its request may answer."""
        request = response.request
        template, op = self.operation(request.method, request.url.path)
        where = f"{request.method} {template} -> {response.status_code}"
        status = str(response.status_code)
        assert status in op["responses"], f"{where}: not documented ({sorted(op['responses'])})"
        assert response.headers.get("X-Request-Id"), f"{where}: no X-Request-Id"
        content = op["responses"][status].get("content")
        if not content:
            assert not response.content, f"{where}: a body where none is documented"
        else:
            assert response.headers["content-type"].startswith(JSON), where
            schema = content[JSON]["schema"]
            assert schema, f"{where}: the document gives no schema"
            validator = jsonschema_rs.validator_for(
                {**schema, "components": self.doc["components"]}
            )
            problems = [
                f"{e.instance_path}: {e.message}" for e in validator.iter_errors(response.json())
            ]
            assert not problems, f"{where}: {problems}\n{response.text[:2000]}"
        self.seen.add((request.method, template, response.status_code))
        return response


@contextmanager
def raw_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, Any]]]:
    """(what a route returned, what its response model let through) for each answer.

    FastAPI filters a route's return value through ``response_model``: a key the model does
    not declare would silently vanish from the wire. This wraps FastAPI's serializer (an
    internal, so only here in tests) to compare both.
    """
    original = fastapi.routing.serialize_response
    pairs: list[tuple[Any, Any]] = []

    async def recording(**kwargs: Any) -> Any:
        out = await original(**kwargs)
        if kwargs.get("field") is not None:
            wire = json.loads(out) if isinstance(out, bytes | str) else out
            pairs.append((jsonable_encoder(kwargs["response_content"]), wire))
        return out

    monkeypatch.setattr(fastapi.routing, "serialize_response", recording)
    yield pairs


def assert_nothing_dropped(pairs: list[tuple[Any, Any]]) -> None:
    """Every answer went out as the route built it."""
    assert pairs, "no answer went through a response model"
    for raw, wire in pairs:
        assert raw == wire, f"the response model changed an answer:\n{raw}\n{wire}"
