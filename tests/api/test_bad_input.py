"""Bad input is a 4xx in the API's error shape, never a 500: malformed bodies, wrong types, unknown fields,
huge numbers, odd query strings; and filters and orderings accept only what they declare."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(batch_admin: Any, api_as: Any) -> APIClient:
    return api_as(batch_admin)


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def post_raw(client: APIClient, path: str, raw: bytes, content_type: str = "application/json") -> Any:
    return client.generic("POST", path, data=raw, content_type=content_type)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"name": "x",}',
        b"",
        b"NaN",
        b'{"name": "\\ud800"}',
        b"\xff\xfe",
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=["broken", "trailing-comma", "empty", "nan", "lone-surrogate", "not-utf8", "deep"],
)
def test_a_body_that_is_not_json_is_a_400(admin: APIClient, raw: bytes) -> None:
    error = error_of(post_raw(admin, "/api/v1/batches/", raw), 400)
    assert error["code"] in {"parse_error", "invalid"}


def test_a_json_array_instead_of_an_object_is_a_400(admin: APIClient) -> None:
    error = error_of(post_raw(admin, "/api/v1/batches/", b'[{"name": "x", "track": "helpfulness"}]'), 400)
    assert "non_field_errors" in error["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ["x"], "track": "helpfulness"}, "name"),
        ({"name": "x", "track": 7}, "track"),
        ({"name": "x", "track": "helpfulness", "overlap": "many"}, "overlap"),
        ({"name": "x", "track": "helpfulness", "overlap": 10**30}, "overlap"),
        ({"name": "x", "track": "helpfulness", "overlap": 1.5}, "overlap"),
        ({"name": "x", "track": "helpfulness", "gold_rate": 1e308}, "gold_rate"),
        ({"name": "x", "track": "helpfulness", "sampling_configs": [2**70]}, "sampling_configs.0"),
        ({"name": "x", "track": "helpfulness", "sampling_configs": "1,2"}, "sampling_configs"),
        ({"name": "x\u0000y", "track": "helpfulness"}, "name"),
        ({"name": "x", "track": "helpfulness", "mode": "ranking", "responses_per_item": 2, "x": 1}, "x"),
    ],
)
def test_wrong_types_and_unknown_fields_are_a_400_naming_the_field(
    admin: APIClient, body: dict[str, Any], field: str
) -> None:
    error = error_of(admin.post("/api/v1/batches/", body, format="json"), 400)
    assert field in error["fields"], error


def test_unknown_fields_are_refused_in_every_write(annotator: Any, api_as: Any) -> None:
    client = api_as(annotator)
    error = error_of(client.post("/api/v1/tokens/", {"name": "x", "admin": True}, format="json"), 400)
    assert error["fields"] == {"admin": ["Unknown field."]}
    batch = factories.ready_batch(items=1)
    error = error_of(client.post(f"/api/v1/batches/{batch.pk}/claim/", {"batch": 1}, format="json"), 400)
    assert "batch" in error["fields"]


def test_nul_characters_deep_in_json_are_refused(admin: APIClient) -> None:
    config = factories.SamplingConfigFactory()
    response = admin.patch(
        f"/api/v1/sampling-configs/{config.pk}/",
        {"extra_params": {"stop": ["ok", "bad\u0000"]}},
        format="json",
    )
    assert "extra_params.stop.1" in error_of(response, 400)["fields"]


def test_a_form_body_is_an_unsupported_media_type(admin: APIClient) -> None:
    response = admin.post("/api/v1/batches/", {"name": "x", "track": "helpfulness"}, format="multipart")
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_a_body_over_the_limit_is_a_413(admin: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    raw = b'{"name": "' + b"x" * 2000 + b'", "track": "helpfulness"}'
    assert error_of(post_raw(admin, "/api/v1/batches/", raw), 413)["code"] == "request_too_large"
    keyed = admin.generic(
        "POST", "/api/v1/batches/", data=raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="big-1"
    )
    assert error_of(keyed, 413)["code"] == "request_too_large"


def test_a_bad_idempotency_key_is_a_400(admin: APIClient) -> None:
    response = admin.post(
        "/api/v1/batches/",
        {"name": "x", "track": "helpfulness"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="has space",
    )
    assert "Idempotency-Key" in error_of(response, 400)["fields"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/batches/99999999999999999999999999/",
        "/api/v1/batches/9223372036854775808/progress/",
        "/api/v1/judgments/18446744073709551616/",
        "/api/v1/nothing-here/",
        "/api/v1/batches",
        "/api/v2/batches/",
    ],
)
def test_unknown_objects_and_paths_are_a_json_404(admin: APIClient, path: str) -> None:
    assert error_of(admin.get(path), 404)["code"] == "not_found"


def test_a_post_to_a_path_without_its_slash_is_a_404_not_a_server_error(admin: APIClient) -> None:
    error_of(admin.post("/api/v1/batches", {"name": "x"}, format="json"), 404)


def test_a_method_a_route_does_not_have_is_a_405(admin: APIClient) -> None:
    assert error_of(admin.put("/api/v1/me/", {}, format="json"), 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "query",
    [
        "created_after=0001-01-01T00:00:00%2B01:00",
        "created_after=yesterday",
        "batch=99999999999999999999",
        "batch=-1",
        "track=fun",
        "cursor=!!!",
        "cursor=" + base64.b64encode(b"p=abc").decode(),
        "cursor=" + base64.b64encode(b"p=99999999999999999999999").decode(),
        "page_size=abc&ordering=id&ordering=-id",
        "mode=pairwise&mode=ranking",
    ],
)
def test_odd_query_strings_are_a_400(admin: APIClient, query: str) -> None:
    error_of(admin.get(f"/api/v1/judgments/?{query}"), 400)


@pytest.mark.parametrize("query", ["page=0", "page=abc", "page=99999999999999999999", "page=2"])
def test_bad_page_numbers_are_a_400(admin: APIClient, query: str) -> None:
    assert "page" in error_of(admin.get(f"/api/v1/batches/?{query}"), 400)["fields"]


def _ten_judgments() -> None:
    batch = factories.ready_batch(items=2, overlap=1)
    from annotate.assignments import services as assignments
    from annotate.judgments.services import judgment_submit

    for n in range(2):
        user = factories.quick_annotator(f"rater{n}")
        assignment = assignments.assignment_claim_next(annotator=user, batch_id=batch.pk)
        assert assignment is not None
        judgment_submit(
            annotator=user,
            assignment_id=assignment.pk,
            data=factories.pairwise_answer(assignment, f"key-{n}-abc"),
        )


@pytest.mark.parametrize(
    "query",
    [
        "ordering=annotator__password",
        "ordering=-annotator__password",
        "annotator__password__startswith=md5",
        "annotator__password__startswith=x",
        "annotator__username=rater0",
        "ordering=password",
        "search=md5",
    ],
)
def test_filters_and_orderings_outside_the_allow_list_are_refused(admin: APIClient, query: str) -> None:
    _ten_judgments()
    for path in ("/api/v1/judgments/", "/api/v1/annotators/", "/api/v1/assignments/", "/api/v1/batches/"):
        error = error_of(admin.get(f"{path}?{query}"), 400)
        assert error["fields"], error


def test_results_never_depend_on_the_password(admin: APIClient) -> None:
    """Whatever an attacker guesses about password hashes, the answer is the same refusal."""
    _ten_judgments()
    answers = {
        admin.get(f"/api/v1/annotators/?{q}").content
        for q in ("annotator__password__startswith=md5", "annotator__password__startswith=zz")
    } | {admin.get(f"/api/v1/annotators/?password__startswith={p}").content for p in ("md5", "zz")}
    assert len(answers) == 2  # one refusal per parameter name, never one per guess
    assert all(b"Unknown query parameter" in a for a in answers)


def test_listed_orderings_and_filters_work(admin: APIClient) -> None:
    first = factories.BatchFactory(name="aaa")
    second = factories.BatchFactory(name="bbb")
    names = [b["name"] for b in admin.get("/api/v1/batches/?ordering=-name").json()["results"]]
    assert names.index("bbb") < names.index("aaa")
    ids = [b["id"] for b in admin.get("/api/v1/batches/?ordering=id").json()["results"]]
    assert ids.index(first.pk) < ids.index(second.pk)
