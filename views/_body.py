"""A response whose body is sent as the chunks it was encoded in, with its length known up front."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["ChunkedBody"]


class ChunkedBody(Response):
    """``chunks`` sent in turn (never joined into one copy), with ``Content-Length`` their total."""

    def __init__(self, chunks: Sequence[bytes], media_type: str, headers: Mapping[str, str]) -> None:
        self.chunks = tuple(chunks)
        length = {"Content-Length": str(sum(len(chunk) for chunk in self.chunks))}
        super().__init__(b"", media_type=media_type, headers={**headers, **length})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        last = len(self.chunks) - 1
        for index, chunk in enumerate(self.chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < last})
        if not self.chunks:
            await send({"type": "http.response.body", "body": b""})
