"""The frameworks' own virtual environment: LangChain, LangGraph (with its SQLite checkpointer) and the OpenAI Agents
SDK on top of the project's SDKs.

The venv reads the project's environment (spanguard, the ``openai``/``anthropic`` SDKs, OpenTelemetry) through a
``.pth`` file and holds only the frameworks and what they bring, so the frameworks never change what the other tests
run against. It is built once under ``tests/.venvs/frameworks`` and rebuilt when the requirements change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from venvs import venv_python

REQUIREMENTS = (
    "langchain-openai>=1.0",
    "langgraph>=1.0",
    "langgraph-checkpoint-sqlite>=2",  # a checkpointer that outlives the process, for the gate resume tests
    "openai-agents>=0.20",
)


@pytest.fixture(scope="session")
def framework_python() -> Path:
    """The frameworks venv's interpreter (built on first use); the tests skip when it cannot be built here."""
    return venv_python("frameworks", REQUIREMENTS, inherit=True)
