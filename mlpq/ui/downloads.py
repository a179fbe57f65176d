"""A job's artifacts on its page, and their download: verified, streamed, an attachment with a safe file name."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO
from urllib.parse import quote

from starlette.responses import StreamingResponse

from mlpq.api_cli import output
from mlpq.api_cli.api import Client
from mlpq.db.artifacts import CHUNK_BYTES, ArtifactRecord

UNSAFE_IN_QUOTES = re.compile(r'[^\x20-\x7e]|["\\%;]')
"""What the plain ``filename=""`` of ``Content-Disposition`` may not carry (RFC 6266): it becomes ``_``."""


def artifacts_json(records: Sequence[ArtifactRecord]) -> list[dict[str, Any]]:
    """``mlpq artifacts --json``, with each one's download link."""
    return [{**output.artifact_row(record), "url": download_url(record)} for record in records]


def artifact_rows(records: Sequence[ArtifactRecord]) -> list[dict[str, Any]]:
    """The job page's table of artifacts: ``mlpq artifacts``'s columns and each one's download link."""
    return [{**row, "size": output.size_text(row["size"])} for row in artifacts_json(records)]


def download_url(record: ArtifactRecord) -> str:
    return f"/jobs/{record.job_id}/artifacts/{quote(record.name, safe='')}"


def content_disposition(name: str) -> str:
    """An attachment named ``name``: an ASCII fallback, and the name itself percent-encoded (RFC 5987)."""
    return f"attachment; filename=\"{UNSAFE_IN_QUOTES.sub('_', name)}\"; filename*=UTF-8''{quote(name, safe='')}"


def download(client: Client, job_id: str, name: str) -> StreamingResponse:
    """The artifact's bytes as an attachment, verified before the first byte is sent: they are copied to a
    temporary file a chunk at a time (raising ``ArtifactCorrupt`` on a mismatch, as ``JobLookupError``,
    ``ArtifactNotFound`` or ``ArtifactNameError`` for what does not exist), then sent from it."""
    record = client.artifact(job_id, name)
    spool = tempfile.TemporaryFile()
    try:
        for chunk in client.artifact_store.verified_chunks(record):
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(_sent(spool), media_type="application/octet-stream",
                             headers={"Content-Disposition": content_disposition(record.name),
                                      "Content-Length": str(record.size), "Cache-Control": "no-store"})


def _sent(spool: BinaryIO) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk
