"""The API's rate limit counts across processes: several processes hitting one key at
once allow exactly the limit between them, on the record store (SQLite in the data
dir, a real PostgreSQL server) and on a real Redis server (`DOCCHAT_REDIS_URL`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.api.limits import RateLimit, RecordCounters
from rag.core.errors import StoreUnavailableError
from rag.core.settings import Settings
from rag.records.database import open_database
from tests.fixtures.paths import ROOT, free_port
from tests.integration.test_scale_out import redis_url  # noqa: F401 - a fixture

PROCESSES = 4
HITS = 30  # each; 120 in all against a limit of 100

# One process: waits for the go file, hits the limit HITS times, prints what it allowed.
_HITTER = """
import json, sys, time
from pathlib import Path
from rag.api.limits import RateLimit
from rag.core.settings import Settings
from rag.records.database import open_database
settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2],
                    redis_url=sys.argv[4], rate_limit="100/minute")
limit = RateLimit(settings, open_database(settings))
go = Path(sys.argv[1]) / "go"
while not go.exists():
    time.sleep(0.005)
allowed = sum(limit.wait("key:shared") is None for _ in range(int(sys.argv[3])))
print(json.dumps(allowed))
"""


def _hit_from_processes(tmp_path: Path, database_url: str, redis: str) -> list[int]:
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    open_database(settings)  # migrated once, before the processes race
    args = [str(tmp_path), database_url, str(HITS), redis]
    procs = [
        subprocess.Popen([sys.executable, "-c", _HITTER, *args], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]  # fmt: skip
    (tmp_path / "go").touch()
    allowed = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        allowed.append(json.loads(out))
    return allowed


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", "postgresql", "redis"])
def test_processes_share_one_count(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if store == "postgresql" else ""
    redis = request.getfixturevalue("redis_url") if store == "redis" else ""
    allowed = _hit_from_processes(tmp_path, url, redis)
    assert sum(allowed) == 100, allowed  # not PROCESSES times the limit, none lost
    settings = Settings(data_dir=tmp_path, database_url=url, redis_url=redis)
    limit = RateLimit(settings.with_(rate_limit="100/minute"), open_database(settings))
    [item] = limit.items
    # Every hit was counted, the refused ones too.
    assert limit.storage.get(item.key_for("key:shared")) == PROCESSES * HITS
    assert isinstance(limit.storage, RecordCounters) == (store != "redis")


def test_an_unreachable_redis_is_a_503_without_its_address(tmp_path: Path) -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    settings = Settings(data_dir=tmp_path, redis_url=url, rate_limit="5/minute")
    limit = RateLimit(settings, open_database(settings))
    with pytest.raises(StoreUnavailableError) as e:
        limit.wait("key:x")
    assert "secret" not in str(e.value) and "127.0.0.1" not in str(e.value)
    assert "DOCCHAT_REDIS_URL" in str(e.value)
