"""One service per concern, each taking only the collaborators it uses; every call
names the acting user. `wiring.build_services` makes them all from `Settings`.

- `gate`: who may do what with a collection (the access rules on its sharing record).
- `collections`: list, create, rename, delete collections.
- `documents`: add files, read documents and chunks back, delete, re-index.
- `uploads`: background uploads as jobs; this engine's workers.
- `answers`: search, retrieval, streamed answers.
- `summaries`: questions about a whole document (map-reduce, or extractive).
- `chats`: each user's conversations, and asking, regenerating, editing in them.
- `views`: a source on its rendered page, or in the text around it.
- `finetuning`: each user's fine-tuning jobs on the LLM's server.
- `team`: sign-in, API keys, account management.
- `tuning`: a collection's embedding model tuned on its questions, and switched back.
- `web`: a user's web sources (pages, sitemaps, feeds) added and refreshed (`DocChat.web`).
- `resources`: what services share (the embedder loaded on first use, write locks).

Left out: per-user state in a service (the user is an argument of every call).
"""

from rag.services.chats import Chats
from rag.services.tuning_view import Tuning
from rag.services.web import Web
from rag.services.wiring import Services, build_services

__all__ = ["Chats", "Services", "Tuning", "Web", "build_services"]
