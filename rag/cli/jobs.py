"""`python -m rag worker`, `python -m rag jobs [ID] [--json] [--cancel] [--prune]`, and
`python -m rag ingest --background PATHS`: background jobs from the command line.

`ingest --background` and `jobs` touch only the job queue (`rag.jobs.queue.JobQueue`:
Huey and the record store), not the Chroma store, so they work beside a running app
on the embedded store (which one process holds); they act as the administrator, as
every command does. `jobs` lists the newest jobs; `--prune` deletes the records of
jobs that ended more than `DOCCHAT_JOB_KEEP_DAYS` ago (workers do so too). `worker` runs
a Huey consumer in the foreground: with Redis (`DOCCHAT_REDIS_URL`) and a Chroma
server, as many as wanted on as many machines.

Left out: managing workers (start them with a process manager), `jobs --watch`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.cli.prog import PROG
from rag.core.settings import ENV_NAMES, Settings
from rag.engine import DocChat
from rag.ingest.pipeline import read_paths
from rag.jobs import Job, JobQueue, Workers
from rag.team.access import LOCAL


def _line(job: Job) -> str:
    return f"{job.id}  {job.status:9}  {job.collection}  {job.user}  {job.summary()}"


def ingest_background(settings: Settings, args: argparse.Namespace) -> int:
    """Submit the files as one job and print its id (the app's or `worker`'s run it)."""
    uploads = list(read_paths([Path(p) for p in args.paths], args.password))
    job = JobQueue(settings).submit(LOCAL, args.collection or settings.collection, uploads)
    if args.json:
        print(json.dumps(job.to_dict(), indent=2))
    else:
        print(job.id)
        print(f"({len(job.files)} file(s) queued: python -m rag jobs {job.id})", file=sys.stderr)
    return 0


def jobs_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} jobs", description="background jobs")
    p.add_argument("id", nargs="?", help="one job: its files and their results")
    p.add_argument("--json", action="store_true")
    p.add_argument("--cancel", action="store_true", help="cancel the job ID")
    keep = ENV_NAMES["job_keep_days"]
    p.add_argument("--prune", action="store_true", help=f"delete old ended jobs' records ({keep})")
    args = p.parse_args(argv)
    if args.cancel and not args.id:
        p.error("--cancel needs a job ID")
    queue = JobQueue(Settings.from_env())
    if args.prune:
        print(f"{queue.prune()} job record(s) pruned")
        return 0
    if args.id is None:
        found = queue.jobs()
        if args.json:
            print(json.dumps([j.to_dict() for j in found], indent=2))
        for j in [] if args.json else found:
            print(_line(j))
        if not found and not args.json:
            print("(no jobs)")
        return 0
    job = queue.cancel(args.id) if args.cancel else queue.job(args.id)
    if args.json:
        print(json.dumps(job.to_dict(), indent=2))
        return 0
    print(_line(job) + (f": {job.error}" if job.error else ""))
    for f in job.files:
        print(f"  {f.status:9}  {f.name}: {f.error or f.message}")
    return 0


def worker_main(argv: Sequence[str]) -> int:
    settings = Settings.from_env()
    p = argparse.ArgumentParser(prog=f"{PROG} worker",
                                description="run background jobs (a Huey consumer)")  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=max(settings.workers, 1),
        help=f"consumer threads (default: {ENV_NAMES['workers']}, at least 1)",
    )  # fmt: skip
    args = p.parse_args(argv)
    logging.getLogger("rag.jobs.queue").setLevel(logging.WARNING)  # a job taken back is logged
    # (its queue is consumed here, whatever DOCCHAT_WORKERS says about the app's threads)
    engine = DocChat.open(settings.with_(workers=args.workers))
    where = "Redis" if settings.redis_url else str(Path(settings.data_dir) / "jobs.db")
    print(f"DocChat worker: {args.workers} thread(s) on the queue at {where}", flush=True)
    Workers(engine.services.uploads.queue, args.workers, embedded=False).run()
    return 0
