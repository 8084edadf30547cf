"""Fine-tuning: from a collection's chunks to a tuned model, compared with RAG.

One module a job:

- `pairs`: Q&A pairs written by the LLM from chunks, with a journal to resume a run.
- `qa_file`: a user's own Q&A file (CSV or JSONL) read as pairs.
- `dataset`: the pair itself, validation, and the train/validation JSONL export.
- `jobs`: fine-tuning jobs on any server with OpenAI's files and fine-tuning API.
- `compare`: one question answered four ways (base or tuned model, alone or with RAG).

The public names are re-exported by `rag`; import them from there. Left out here:
the command line (`rag/cli/finetune.py`) and the pages.
"""
