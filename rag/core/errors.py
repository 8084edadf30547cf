"""One error family for everything a user can cause or fix.

Every `RagError` message is written for a person: it is safe to show in the UI or
print on the command line as it is. Anything that is not a `RagError` is a bug.
The subclasses exist so callers and tests can tell cases apart; they add no state.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: the message is safe to show a user."""


class UnsupportedFileError(RagError):
    """The file is of a type DocChat does not read (binary, unknown extension)."""


class ExtractionError(RagError):
    """The file claims a supported type but cannot be read (broken, truncated, hostile)."""


class PasswordRequiredError(RagError):
    """An encrypted PDF was given without a password."""


class WrongPasswordError(RagError):
    """An encrypted PDF was given a password that does not open it."""


class NoTextError(RagError):
    """The document has no extractable text at all (scanned pages, empty file)."""


class LimitExceededError(RagError):
    """A configured limit was exceeded: of an upload (size, pages, chunks, time), a
    question or message, a request (files, body, embedding inputs)."""


class ReindexNeededError(RagError):
    """The collection was built with another embedding model or splitter."""


class CollectionNotFoundError(RagError):
    """No collection has that name."""


class ModelNotFoundError(CollectionNotFoundError):
    """The API was asked for a model that is not docchat/<collection> (or the embedder)."""


class CollectionExistsError(RagError):
    """A collection with that name already exists."""


class DocumentNotFoundError(RagError):
    """No document in the collection matches."""


class StoreUnavailableError(RagError):
    """The Chroma store cannot be reached or opened (server down, data dir locked)."""


class LLMError(RagError):
    """The language model call failed; the message says why in plain words."""


class EmbeddingServerError(RagError):
    """The remote embedding server is down, timed out, refused or answered badly."""


class ConfigError(RagError):
    """A setting has a value DocChat cannot use."""


class DatasetError(RagError):
    """A question/answer set cannot be read, or fails validation (fine-tuning data)."""


class AccessDeniedError(RagError):
    """The acting user may not do this with this collection (`access.check`)."""


class AccountError(RagError):
    """An account cannot be added or changed as asked (name taken, short password)."""


class SignInError(RagError):
    """A sign-in failed: wrong name or password, or slowed down or locked after failures."""


class JobNotFoundError(RagError):
    """No background job with that id (or not one of the caller's)."""


class ConversationNotFoundError(RagError):
    """No conversation (or turn in it) with that id among the acting user's own."""


class RerankError(RagError):
    """Re-ranking the search's candidates failed: the service or the LLM is down, late,
    refused, or sent a reply that cannot be read (the fused order is kept)."""


class TuningError(RagError):
    """Tuning a collection's embedding model failed: no usable pairs, or training broke."""


class TuningCancelled(TuningError):
    """The user stopped a tuning job; nothing of it was kept."""


class WebFetchError(RagError):
    """A web address was not fetched: refused (not http(s), not a public address, robots.txt),
    over a limit (size, redirects, time), of a type not asked for, or the server failed."""
