from __future__ import annotations

from pathlib import Path

import pytest

from rag import ConfigError, Settings


def test_defaults_and_env() -> None:
    s = Settings.from_env({}, secrets_path=None)
    assert s == Settings()
    assert not s.llm_configured and not s.server_mode
    s = Settings.from_env(
        {
            "DOCCHAT_DATA_DIR": "/tmp/x",
            "DOCCHAT_TOP_K": "9",
            "OPENAI_BASE_URL": "http://h/v1",
            "DOCCHAT_CHROMA_HOST": "127.0.0.1",
            "DOCCHAT_HYBRID": "no",
        },
        secrets_path=None,
    )
    assert s.data_dir == Path("/tmp/x") and s.top_k == 9 and s.llm_configured
    assert s.server_mode and s.hybrid is False


def test_secrets_file_below_env(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('OPENAI_API_KEY = "sk-file"\nDOCCHAT_TOP_K = 3\n')
    s = Settings.from_env({"DOCCHAT_TOP_K": "7"}, secrets_path=secrets)
    assert s.openai_api_key == "sk-file" and s.top_k == 7


def test_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="DOCCHAT_TOP_K"):
        Settings.from_env({"DOCCHAT_TOP_K": "many"}, secrets_path=None)


def test_remote_embedding_settings() -> None:
    s = Settings.from_env(
        {
            "DOCCHAT_EMBEDDING_BASE_URL": "http://127.0.0.1:11434/v1",
            "DOCCHAT_EMBEDDING_API_KEY": "sk-embed",
            "DOCCHAT_EMBEDDING_TIMEOUT": "5",
            "DOCCHAT_EMBEDDING_MAX_RETRIES": "0",
            "DOCCHAT_EMBEDDING_MAX_TOKENS": "500",
        },
        secrets_path=None,
    )
    assert s.remote_embedding and not Settings().remote_embedding
    assert (s.embedding_timeout, s.embedding_max_retries, s.embedding_max_tokens) == (5.0, 0, 500)
    assert "sk-embed" not in repr(s)
