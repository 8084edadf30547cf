"""An API upload read as it arrives: the multipart body of `POST
/v1/collections/{name}/documents`, parsed from the request's stream by
python-multipart's streaming parser, each file written to a temporary file as its
bytes come.

The request is refused (`LimitExceededError`, 413) the moment a file passes
`DOCCHAT_MAX_FILE_MB`, the body `DOCCHAT_MAX_REQUEST_MB` or the files
`DOCCHAT_MAX_REQUEST_FILES`: the rest of the body is never read, and what was read
is on disk, not in memory. A `Content-Length` over the request limit is refused
before any of the body.

The parser's callbacks write to the files directly, on the event loop: each write is
one network chunk (tens of KB) into the page cache.

Left out: fields other than `files` (read and dropped, at most `FIELD_BYTES` each),
and a per-part Content-Type (the file's name decides how it is read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from rag.core.errors import LimitExceededError, RagError
from rag.core.settings import ENV_NAMES, Settings

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FIELD = "files"  # the multipart field that carries the files
FIELD_BYTES = 64_000  # any other field: read, dropped, and no longer than this
_MB = 1_000_000
# The body as the docs page shows it (the route reads a stream, so FastAPI cannot tell).
OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class UploadLimits:
    """Bytes per file, bytes per request, files per request."""

    file_bytes: int
    request_bytes: int
    files: int

    @classmethod
    def of(cls, settings: Settings) -> UploadLimits:
        return cls(
            file_bytes=int(settings.max_file_mb * _MB),
            request_bytes=int(settings.max_request_mb * _MB),
            files=settings.max_request_files,
        )

    def over_request(self) -> LimitExceededError:
        return LimitExceededError(
            f"The upload is over the limit of {self.request_bytes / _MB:g} MB per request "
            f"({ENV_NAMES['max_request_mb']}): send the files in several requests."
        )


@dataclass(frozen=True)
class Received:
    """One file of the upload, on disk."""

    name: str
    path: Path
    size: int


class _Parts:
    """The parser's callbacks: the parts' headers, and their bytes to files."""

    def __init__(self, folder: Path, limits: UploadLimits) -> None:
        self.folder = folder
        self.limits = limits
        self.files: list[Received] = []
        self._header = b""
        self._value = b""
        self._disposition = b""
        self._name = ""  # the current file's name ("" for a field that is not a file)
        self._out: BinaryIO | None = None
        self._size = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self._disposition, self._name, self._size = b"", "", 0

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if options.get(b"name") != FIELD.encode() or b"filename" not in options:
            return  # another field: its bytes are counted and dropped
        if len(self.files) >= self.limits.files:
            raise LimitExceededError(
                f"The upload is over the limit of {self.limits.files} files per request "
                f"({ENV_NAMES['max_request_files']}): send them in several requests."
            )
        name = options[b"filename"].decode("utf-8", "replace") or "upload"
        self._name = Path(name.replace("\\", "/")).name or "upload"  # a name, not a path
        self._out = (self.folder / f"{len(self.files):05d}").open("wb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        if self._out is None:
            if self._size > FIELD_BYTES:
                raise RagError(f"A form field other than {FIELD!r} is over {FIELD_BYTES} bytes.")
            return
        if self._size > self.limits.file_bytes:
            raise LimitExceededError(
                f"{self._name} is over the limit of {self.limits.file_bytes / _MB:g} MB per "
                f"file ({ENV_NAMES['max_file_mb']})."
            )
        self._out.write(data[start:end])

    def part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self.files.append(Received(self._name, Path(self._out.name), self._size))
            self._out = None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def receive_files(request: Request, limits: UploadLimits, folder: Path) -> list[Received]:
    """The files of the request's multipart body, written under `folder` as they
    arrive; `LimitExceededError` as soon as a limit is passed, `RagError` for a body
    that is not multipart or not whole."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.request_bytes:
        raise limits.over_request()
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise RagError(f"Send the files as multipart/form-data, in the field {FIELD!r}.")
    parts = _Parts(folder, limits)
    parser = MultipartParser(boundary, parts.callbacks())
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limits.request_bytes:
                raise limits.over_request()
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise RagError("The multipart body is malformed or incomplete.") from None
    finally:
        parts.close()
    if not parts.files:
        raise RagError(f"No files: send them in the multipart field {FIELD!r}.")
    return parts.files
