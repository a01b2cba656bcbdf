"""``spanguard review``: tokens printed once and stored hashed, migrations, config errors, and ``serve``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

from spanguard.cli import main
from spanguard.review.store import ReviewStore


def test_token_create_prints_a_token_once_and_stores_only_its_hash(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["review", "token", "create", "--db", db, "--role", "reviewer", "--name", "alice"]) == 0
    token = capsys.readouterr().out.strip()
    assert re.fullmatch(r"sgr_[A-Za-z0-9_-]{43}", token)
    assert token.encode() not in (tmp_path / "r.db").read_bytes()
    store = ReviewStore(db)
    assert store.authenticate(token).name == "alice"
    store.shutdown()
    assert main(["review", "token", "revoke", "--db", db, "--name", "alice"]) == 0
    assert "revoked 1 token(s) of alice" in capsys.readouterr().out


def test_token_list_shows_names_roles_and_use_never_the_token(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["review", "token", "create", "--db", db, "--role", "reviewer", "--name", "alice"]) == 0
    alice = capsys.readouterr().out.strip()
    assert main(["review", "token", "create", "--db", db, "--role", "ingest", "--name", "collector"]) == 0
    collector = capsys.readouterr().out.strip()
    store = ReviewStore(db)
    assert store.authenticate(alice) is not None  # alice's token is used once
    store.shutdown()
    assert main(["review", "token", "revoke", "--db", db, "--name", "collector"]) == 0
    capsys.readouterr()
    assert main(["review", "token", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    header, first, second = listing.strip().splitlines()
    assert header.split() == ["NAME", "ROLE", "CREATED", "(UTC)", "LAST", "USED", "(UTC)", "STATUS"]
    assert first.split()[:2] == ["alice", "reviewer"] and first.split()[-1] == "active" and "never" not in first
    assert second.split()[:2] == ["collector", "ingest"] and second.split()[-2:] == ["never", "revoked"]
    assert alice not in listing and collector not in listing


def test_every_review_command_and_option_has_help(capsys):
    for command in (["review", "token", "revoke"], ["review", "token", "list"], ["review", "serve"]):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        options = re.findall(r"^  (--[a-z-]+)( [A-Z_]+)?\s*$", text, re.MULTILINE)
        assert not options, f"{command}: options without help: {options}"


def test_usage_errors_exit_2(capsys):
    for argv in (["review"], ["review", "token"], [], ["collector"]):
        code = main(argv) if argv in ([], ["collector"]) else None
        if code is None:
            with pytest.raises(SystemExit) as done:
                main(argv)
            code = done.value.code
        assert code == 2, argv
        capsys.readouterr()


def test_migrate_reports_the_revision(tmp_path, capsys):
    assert main(["review", "migrate", "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 0
    assert "is at revision 0007" in capsys.readouterr().out


def test_a_broken_risk_rules_file_is_refused_at_its_own_line(tmp_path, capsys):
    (tmp_path / "risk.yaml").write_text(
        "rules:\n  - name: x\n    tier: orange\n    reason: r\n    match: {tool_name: a}\n"
    )
    config = tmp_path / "review.yaml"
    config.write_text("risk_rules: risk.yaml\n")
    assert main(["review", "migrate", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 2
    error = capsys.readouterr().err
    assert "risk.yaml:3:" in error and "orange" in error
    config.write_text("risk_rules: missing.yaml\n")
    assert main(["review", "migrate", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_checklist_descriptions_are_checked_like_the_rest_of_the_policy(tmp_path, capsys):
    config = tmp_path / "review.yaml"
    config.write_text('policy:\n  checklist_descriptions: {tone: "", "bad key": "x"}\n')
    assert main(["review", "migrate", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 2
    assert "policy.checklist_descriptions" in capsys.readouterr().err


def test_a_bad_config_is_refused_with_the_keys_path(tmp_path, capsys):
    config = tmp_path / "review.yaml"
    config.write_text("policy:\n  lease_s: -1\n  made_up: 1\n")
    assert main(["review", "migrate", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 2
    error = capsys.readouterr().err
    assert "policy.lease_s" in error and "policy.made_up" in error
    config.write_text("policy: [unclosed\n")
    assert main(["review", "migrate", "--config", str(config)]) == 2
    assert "review.yaml:2:1: YAML syntax error" in capsys.readouterr().err
    assert main(["review", "migrate", "--db", "mysql://x"]) == 2
    assert "db:" in capsys.readouterr().err


def test_an_unreachable_database_is_one_line_not_a_traceback(capsys):
    assert main(["review", "migrate", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("spanguard review: OperationalError") and "Traceback" not in error


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_and_stops_on_sigint_or_sigterm_even_with_sigint_ignored_by_its_parent(tmp_path, stop):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "spanguard.cli", "review", "serve", "--db", db, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # As a background job of a non-interactive shell starts it: SIGINT ignored, which a child inherits.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        assert httpx.get(f"http://127.0.0.1:{match.group(1)}/healthz", timeout=10).json() == {"status": "ok"}
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_serve_logs_json_lines_by_default_or_console_lines(tmp_path, log_format):
    import json

    db = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["review", "serve", "--db", db, "--port", "0"] + (
        ["--log-format", "console"] if log_format == "console" else []
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "spanguard.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert "review service on" in process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the service logged nothing"
    for line in lines:
        if log_format == "json":
            entry = json.loads(line)  # every line one JSON object
            assert {"ts", "level", "logger", "msg"} <= set(entry)
        else:
            assert len(line.split("\t")) >= 4, line
    assert not any("Loaded recognizer" in line or "Context impl" in line for line in lines)
