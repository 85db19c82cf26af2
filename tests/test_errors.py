"""Every error is RFC 9457 problem+json; a 500 leaks neither SQL nor stack traces."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from referral_net.api.problems import install_error_handlers
from referral_net.errors import (
    STATUS_BY_ERROR,
    Conflict,
    NotFound,
    PreconditionFailed,
    ReferralNetError,
    status_for,
)

PROBLEM = "application/problem+json"


class _Body(BaseModel):
    name: str = Field(min_length=1)
    age: int = Field(ge=0, le=120)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    def create(body: _Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/missing")
    def missing() -> None:
        raise NotFound("No such thing.")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError('SELECT secret FROM location WHERE id = 1; File "/srv/app.py"')

    return app


def _client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


def test_every_error_class_has_a_status_and_subclasses_inherit() -> None:
    assert all(issubclass(cls, ReferralNetError) for cls in STATUS_BY_ERROR)
    assert status_for(Conflict("x")) == 409
    assert status_for(PreconditionFailed("x")) == 412

    class Gone(NotFound):
        pass

    assert status_for(Gone("x")) == 404


def test_validation_error_names_each_failing_field_without_echoing_input() -> None:
    response = _client().post("/things", json={"name": "", "age": 500})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= body.keys()
    assert body["status"] == 422
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"body.name", "body.age"}
    assert "500" not in response.text


def test_malformed_json_is_a_422_problem() -> None:
    response = _client().post(
        "/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


def test_domain_error_is_a_problem() -> None:
    response = _client().get("/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "No such thing."
    assert response.json()["instance"] == "/missing"


def test_unknown_route_and_wrong_method_are_problems() -> None:
    client = _client()
    unknown = client.get("/no/such/route")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    wrong_method = client.delete("/things")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == PROBLEM


def test_unexpected_error_is_a_500_without_sql_or_trace() -> None:
    response = _client().get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "SELECT" not in response.text
    assert "app.py" not in response.text
    assert "RuntimeError" not in response.text
