"""The setup stage: files -> LoadedDocuments -> Chunks -> vectors in the store.

`loaders` (with one module per format: `pdf`, `docx`, `html`, `text`, `code`, and
`blocks` for what they share) turns bytes into a `LoadedDocument`; `extract` runs
that on untrusted bytes in worker processes; `splitting` cuts documents into chunks;
`stages` prepares (extract, split, embed) and commits one file; `pipeline` runs the
files of one upload through those stages. `DocChat` wires them to its store.

The public names are re-exported by `rag`. This package re-exports only
`check_model` (for the retrieval stage); nothing named like one of its modules, so
that `rag.ingest.extract` stays the module (not its `extract` function).

Left out: OCR, de-duplication of near-identical files.
"""

from rag.ingest.stages import check_model

__all__ = ["check_model"]
