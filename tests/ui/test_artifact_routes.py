"""The job page lists its artifacts; their download is an attachment behind the sign-in, verified, by name only."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from mlpq.api_cli.api import Client
from mlpq.config import Settings
from mlpq.db.artifacts import CHUNK_BYTES, ArtifactStore
from mlpq.db.engine import make_engine
from mlpq.db.schema import ARTIFACT_CHUNKS
from mlpq.ui.app import create_app
from mlpq.ui.downloads import content_disposition
from tests.api_cli.ledger_rows import add_job

TOKEN = "s3cret-token-for-tests"
MODEL = os.urandom(CHUNK_BYTES + 10)
ODD_NAME = 'wëights "v2"; <b>.pt'  # no '%': Starlette's test client decodes a path twice


@pytest.fixture
def store(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArtifactStore]:
    monkeypatch.setenv("MLPQ_DATABASE_URL", database_url)
    engine = make_engine(database_url)
    yield ArtifactStore(engine, None, 1 << 26)
    engine.dispose()


def app_client(token: str | None = None) -> TestClient:
    app = create_app(Client(Settings.from_env()), token=token, allowed_hosts=("testserver",))
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False)


def job_with_artifacts(store: ArtifactStore) -> str:
    job_id = add_job("himmelblau", {"steps": 10})
    store.put(job_id, 1, "model.pt", MODEL)
    store.put(job_id, 1, ODD_NAME, b"odd")
    return job_id


def test_the_job_page_lists_artifacts_with_download_links(store: ArtifactStore) -> None:
    job_id = job_with_artifacts(store)
    page = app_client().get(f"/jobs/{job_id}").text
    assert f'<a href="/jobs/{job_id}/artifacts/model.pt" download>model.pt</a>' in page
    assert hashlib.sha256(MODEL).hexdigest() in page and "1.0 MiB" in page
    assert "&lt;b&gt;" in page and "<b>" not in page  # the name is text, never markup
    assert f"/jobs/{job_id}/artifacts/w%C3%ABights%20%22v2%22%3B%20%3Cb%3E.pt" in page
    assert "Artifacts" not in app_client().get(f"/jobs/{add_job('himmelblau', {'steps': 10})}").text


def test_the_api_lists_them_as_the_cli_does(store: ArtifactStore) -> None:
    job_id = job_with_artifacts(store)
    client = app_client()
    listed = client.get(f"/api/jobs/{job_id[:6]}/artifacts").json()
    assert [(a["name"], a["size"], a["sha256"], a["attempt"], a["store"]) for a in listed] == [
        ("model.pt", len(MODEL), hashlib.sha256(MODEL).hexdigest(), 1, "ledger"),
        (ODD_NAME, 3, hashlib.sha256(b"odd").hexdigest(), 1, "ledger")]
    assert client.get(listed[1]["url"]).content == b"odd"
    assert client.get("/api").json()["GET /api/jobs/{id}/artifacts"].startswith("mlpq artifacts --json")
    assert client.get("/api/jobs/ffff/artifacts").json() == {"error": "no job ffff"}


def test_a_download_is_an_attachment_of_the_verified_bytes(store: ArtifactStore) -> None:
    job_id = job_with_artifacts(store)
    response = app_client().get(f"/jobs/{job_id[:8]}/artifacts/model.pt")
    assert response.status_code == 200 and response.content == MODEL
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == "attachment; filename=\"model.pt\"; filename*=UTF-8''model.pt"
    assert response.headers["content-length"] == str(len(MODEL))
    assert response.headers["x-content-type-options"] == "nosniff"
    odd = app_client().get(f"/jobs/{job_id}/artifacts/w%C3%ABights%20%22v2%22%3B%20%3Cb%3E.pt")
    assert odd.status_code == 200 and odd.content == b"odd"
    assert odd.headers["content-disposition"] == content_disposition(ODD_NAME)


def test_content_disposition_never_breaks_out_of_its_quotes() -> None:
    assert content_disposition(ODD_NAME) == ("attachment; filename=\"w_ights _v2__ <b>.pt\"; "
                                             "filename*=UTF-8''w%C3%ABights%20%22v2%22%3B%20%3Cb%3E.pt")
    assert content_disposition("a\r\nSet-Cookie: x") == ("attachment; filename=\"a__Set-Cookie: x\"; "
                                                         "filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x")


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/jobs/ffff/artifacts/model.pt", 404, "no job ffff"),
    ("/jobs/{job}/artifacts/missing.pt", 404, "job {job} has no artifact &#39;missing.pt&#39;"),
    ("/jobs/{job}/artifacts/..%2F..%2Fetc%2Fpasswd", 404, "Not Found"),  # a '/' matches no route
    ("/jobs/{job}/artifacts/%2E%2E", 400, "bad artifact name"),
])
def test_what_does_not_exist_is_a_one_line_error_page(store: ArtifactStore, path: str, status: int,
                                                      message: str) -> None:
    job_id = job_with_artifacts(store)
    response = app_client().get(path.format(job=job_id))
    assert response.status_code == status, response.text
    assert message.format(job=job_id) in response.text
    assert "content-disposition" not in response.headers


def test_corrupt_bytes_are_never_sent(store: ArtifactStore) -> None:
    job_id = job_with_artifacts(store)
    with store.engine.begin() as connection:
        connection.execute(update(ARTIFACT_CHUNKS).where(ARTIFACT_CHUNKS.c.seq == 1).values(data=b"0123456789"))
    response = app_client().get(f"/jobs/{job_id}/artifacts/model.pt")
    assert response.status_code == 500 and "artifact corrupt: model.pt of job" in response.text
    assert "content-disposition" not in response.headers


def test_downloads_need_the_sign_in(store: ArtifactStore) -> None:
    job_id = job_with_artifacts(store)
    client = app_client(TOKEN)
    refused = client.get(f"/jobs/{job_id}/artifacts/model.pt")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login?next=")
    assert client.post("/login", data={"token": TOKEN, "next": "/jobs"}).status_code == 303
    assert client.get(f"/jobs/{job_id}/artifacts/model.pt").content == MODEL


def test_directory_artifacts_are_served_too(store: ArtifactStore, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPQ_ARTIFACT_DIR", str(tmp_path))
    job_id = add_job("himmelblau", {"steps": 10})
    ArtifactStore(store.engine, tmp_path, 1 << 26).put(job_id, 1, "model.pt", MODEL)
    assert app_client().get(f"/jobs/{job_id}/artifacts/model.pt").content == MODEL
