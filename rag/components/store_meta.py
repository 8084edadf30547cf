"""DocChat's models as Chroma metadata and back: the only place that knows the mapping.

Chroma metadata holds flat scalars only: `to_meta` leaves out what is None and joins
lists by newlines; `from_meta` undoes it (and fills the fields older document records
lack). `chunks_in` reads the chunks of a Chroma `get` or `query` result.

Left out: the Chroma calls themselves (`store_base.py` and the modules above it).
"""

from __future__ import annotations

from typing import Any, TypeVar

from rag.core.models import Chunk, CollectionInfo, DocumentInfo, from_dict

_T = TypeVar("_T", Chunk, DocumentInfo, CollectionInfo)
_RECORD_DEFAULTS: dict[str, Any] = {"kind": "", "pages": 0, "chunks": 0, "size": 0, "added": 0.0}
# (older records may lack those; every other field is always written)


def to_meta(value: Chunk | DocumentInfo, *, outside: str) -> dict[str, Any]:
    """A model as Chroma metadata, which holds flat scalars only: absent keys mean "not
    applicable" (None), lists are joined by newlines. Chroma keeps `outside` elsewhere
    (a chunk's text, a record's id). Floats (a record's `added`) are kept to the
    microsecond: Chroma 1.5.9 gave 218 of 2,000 full-precision times back one bit off,
    and the records kept after a write (`StoreBase._records_changed`) must equal a
    read."""
    return {
        k: "\n".join(v) if isinstance(v, list) else round(v, 6) if isinstance(v, float) else v
        for k, v in value.to_dict().items()
        if k != outside and v is not None
    }


def from_meta(cls: type[_T], meta: dict[str, Any], **known: Any) -> _T:
    """The inverse of `to_meta` (`known`: what Chroma keeps outside the metadata)."""
    if cls is DocumentInfo:
        warnings = str(meta.get("warnings", ""))
        meta = {**_RECORD_DEFAULTS, **meta, "warnings": [w for w in warnings.split("\n") if w]}
    return from_dict(cls, meta, **known)


def chunks_in(got: dict[str, Any], row: int | None = None) -> list[Chunk]:
    """The chunks of a Chroma `get` result (or of one `row` of a `query` result)."""
    texts, metas = got["documents"], got["metadatas"]
    if row is not None:
        texts, metas = texts[row], metas[row]
    return [from_meta(Chunk, m, text=t) for t, m in zip(texts, metas, strict=True)]
