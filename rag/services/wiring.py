"""The one place that wires DocChat: `build_services` makes every component and
service from `Settings`, each given only the collaborators it uses.

Tests pass fakes here (an embedder, an LLM client, a store shared with another
engine), or register an embedder under a model name (`EMBEDDERS`) for code that
builds its engine from the settings alone, as the app does; nothing else builds a
component.

Left out: choosing other components by name (the settings choose the store's mode;
there is one implementation of everything else).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rag.components.conversations import Conversations
from rag.components.embeddings import Embedder
from rag.components.generation import LLM, open_llm
from rag.components.lexical import Lexical
from rag.components.remote_embeddings import open_embedder
from rag.components.rerankers import open_reranker
from rag.components.store import Store
from rag.components.versions import CollectionVersions
from rag.core.settings import Settings
from rag.records import Database, open_database
from rag.services.answers import AnswerService
from rag.services.chats import ChatService
from rag.services.collections import CollectionService
from rag.services.documents import DocumentService
from rag.services.finetuning import FineTuneService
from rag.services.gate import Gate
from rag.services.resources import LazyEmbedder, WriteLocks
from rag.services.summaries import SummaryService
from rag.services.team import TeamService
from rag.services.tuning import TuningService
from rag.services.uploads import UploadService
from rag.services.views import ViewService
from rag.services.web import Web
from rag.team.keys import ApiKeys
from rag.team.sharing import SharingStore
from rag.team.signin import SignIn, open_accounts
from rag.views.page_view import PageViews

# Embedders by model name, used when the settings name that model (a plugin's own
# model; the tests' fast fake): anything else is the local model or a remote server's.
EMBEDDERS: dict[str, Callable[[Settings], Embedder]] = {}


@dataclass(frozen=True)
class Services:
    """Everything one engine is made of; shared by every user's view of it."""

    settings: Settings
    records: Database
    store: Store
    embedder: LazyEmbedder
    llm: LLM | None
    lexical: Lexical
    conversations: Conversations
    gate: Gate
    collections: CollectionService
    documents: DocumentService
    uploads: UploadService
    answers: AnswerService
    views: ViewService
    finetuning: FineTuneService
    team: TeamService
    summaries: SummaryService
    chats: ChatService
    tuning: TuningService

    def close(self) -> None:
        """Stop this engine's workers for good (the jobs under way finish first).

        The model and the LLM client are left to the garbage collector: a browser
        session may still be answering with them when its settings change."""
        self.uploads.stop_workers()


def build_services(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    store: Store | None = None,
    llm: LLM | None = None,
) -> Services:
    """The services for these settings. `embedder` and `llm` replace the ones the
    settings name (an `llm` of None means the settings': none when they name no
    server; evaluations clear the settings' LLM instead); `store` shares another
    engine's store."""
    data = Path(settings.data_dir)
    db = open_database(settings)
    store = store if store is not None else Store(settings, CollectionVersions(db))
    factory = EMBEDDERS.get(settings.embedding_model, open_embedder)
    model = LazyEmbedder(partial(factory, settings), embedder, settings=settings)
    client = llm if llm is not None else open_llm(settings)
    locks = WriteLocks()
    lexical = Lexical(store, data / "lexical")
    conversations = Conversations(db)
    gate = Gate(settings, SharingStore(db))
    accounts = open_accounts(settings)
    options = settings.read_options()
    page_views = PageViews(
        data / "page_views",
        max_bytes=int(settings.page_cache_mb * 1_000_000),
        dpi=settings.page_view_dpi,
        ocr_dpi=options.ocr_dpi,
        ocr_languages=options.ocr_languages,
    )
    collections = CollectionService(settings, store=store, gate=gate, embedder=model, locks=locks,
                                    lexical=lexical, conversations=conversations,
                                    page_views=page_views)  # fmt: skip
    documents = DocumentService(settings, store=store, gate=gate, embedder=model, locks=locks,
                                lexical=lexical, page_views=page_views,
                                collections=collections)  # fmt: skip
    answers = AnswerService(settings, store=store, gate=gate, embedder=model, lexical=lexical,
                            llm=client, collections=collections,
                            reranker=open_reranker(settings, client))  # fmt: skip
    summaries = SummaryService(settings, documents=documents, answers=answers, llm=client)
    tuning = TuningService(settings, store=store, gate=gate, embedder=model, locks=locks,
                           lexical=lexical)  # fmt: skip
    return Services(
        settings=settings,
        records=db,
        store=store,
        embedder=model,
        llm=client,
        lexical=lexical,
        conversations=conversations,
        gate=gate,
        collections=collections,
        documents=documents,
        uploads=UploadService(
            settings, db=db, store=store, gate=gate, runner=documents.ingest_many,
            users=accounts.current_user,  # a job runs with its user's rights of the moment
            tune_runner=tuning.run_job,
            refresh_runner=lambda user, name: Web(documents, user).refresh(name),
        ),
        answers=answers,
        views=ViewService(store=store, gate=gate, page_views=page_views),
        finetuning=FineTuneService(llm=client, records=db),
        team=TeamService(SignIn(settings, accounts), keys=ApiKeys(db), collections=collections),
        summaries=summaries,
        chats=ChatService(
            settings,
            gate=gate,
            conversations=conversations,
            collections=collections,
            answers=answers,
            summaries=summaries,
            llm=client,
        ),
        tuning=tuning,
    )
