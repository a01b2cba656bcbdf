"""Instrumentation of LLM libraries, one module per library, plus sessions, agents and tools.

Each library's instrumentor is an ``opentelemetry_instrumentor`` entry point named ``spanguard_*`` in pyproject.toml
(see ``spanguard._instrument``); docs/contributing.md says how to add one.
"""
