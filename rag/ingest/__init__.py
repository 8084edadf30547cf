"""The setup stage: files -> LoadedDocuments -> Chunks -> vectors in the store.

`loaders` turns bytes into a `LoadedDocument`, with one module per format: `pdf`
(with `pdf_page` for one page's text, `pdf_outline` for its sections, `pdfium` for
the second engine and `layout` for tables), `image`, `docx`, `html`, `text`, `code`,
and `blocks` for what they share; `ocr` reads scanned PDF pages and image files.
`extract` runs the loaders on untrusted bytes in worker processes (`worker` is the
child's side); `splitting` cuts documents into chunks; `stages` prepares (extract,
split, embed) and commits one file; `pipeline` runs the files of one upload through
those stages. The services (`rag/services/`) wire them to the store.

The public names are re-exported by `rag`. This package re-exports nothing, so that
`rag.ingest.extract` stays the module (not its `extract` function).

Left out: de-duplication of near-identical files (only a file with the same bytes as
one already indexed is skipped, as `unchanged`), the formats `loaders` leaves out,
and what OCR cannot read (see `ocr`: handwriting, scripts beyond its model's).
"""
