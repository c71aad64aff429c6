"""The emulator's FilterLogEvents applies CloudWatch Logs filter patterns as AWS documents them for unstructured
events, and refuses the patterns AWS refuses (tests/emulator/log_filters.py says what it leaves out)."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

GROUP = "/test/filters"
MESSAGES = ["ERROR connection refused", "WARN slow query", "INFO GET /health 200", "ERROR Exiting",
            'said "hello world" twice']


@pytest.fixture
def logs(aws):
    client = aws.client("logs")
    client.create_log_group(logGroupName=GROUP)
    client.create_log_stream(logGroupName=GROUP, logStreamName="s")
    start = int(time.time() * 1000) - 60_000  # AWS (and moto) refuse events older than 14 days
    client.put_log_events(logGroupName=GROUP, logStreamName="s",
                          logEvents=[{"timestamp": start + i, "message": m} for i, m in enumerate(MESSAGES)])
    return client


def matching(logs, pattern: str) -> list[str]:
    return [e["message"] for e in logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)["events"]]


@pytest.mark.parametrize("pattern, expected", [
    ("", MESSAGES),
    ("ERROR", ["ERROR connection refused", "ERROR Exiting"]),
    ("error", []),  # case counts
    ("ERROR refused", ["ERROR connection refused"]),
    ('"connection refused"', ["ERROR connection refused"]),
    ('"refused connection"', []),
    ("?WARN ?INFO", ["WARN slow query", "INFO GET /health 200"]),
    ("ERROR -Exiting", ["ERROR connection refused"]),
    ('-"slow query" -ERROR', ["INFO GET /health 200", 'said "hello world" twice']),
    ("200", ["INFO GET /health 200"]),
    ('"said \\"hello world\\""', ['said "hello world" twice']),
])
def test_terms_phrases_any_of_and_none_of(logs, pattern, expected):
    assert matching(logs, pattern) == expected


@pytest.mark.parametrize("pattern, reason", [
    ('"connection refused', "Invalid filter pattern"),
    ('ERROR ""', "Invalid filter pattern: Invalid character(s) in term '\"\"'"),
    ('{ $.level = "error"', "Invalid filter pattern: If a filter pattern starts with '{' it must end with '}'"),
    ("[ip, user", "Invalid filter pattern: If a filter pattern starts with '[' it must end with ']'"),
])
def test_patterns_aws_refuses_are_refused(logs, pattern, reason):
    with pytest.raises(ClientError) as refused:
        matching(logs, pattern)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert refused.value.response["Error"]["Message"] == reason
