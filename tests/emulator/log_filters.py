"""CloudWatch Logs filter patterns over unstructured events, as FilterLogEvents (and Live Tail) apply them.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html

moto 5.2.5 matches one run of plain words (each must appear) or one quoted phrase, returns every event
for anything else (`?ERROR ?WARN`, `ERROR -health`, `"a" "b"`, a pattern starting with a digit), and
accepts patterns AWS refuses. Here, as AWS does:

- terms separated by spaces must all appear; a "quoted phrase" must appear as written; case counts;
- `?term` terms: at least one of them must appear;
- `-term` terms: none of them may appear;
- refused with InvalidParameterException: an unclosed quote, an empty quoted term (AWS: Invalid
  character(s) in term '""', DefangLabs/defang#1008), a pattern starting with `{` that does not end
  with `}` (jorgebastida/awslogs#210), or with `[` that does not end with `]`.

Not covered (every event matches, as in moto): JSON patterns `{ $.level = "error" }`, space-delimited
patterns `[ip, user, ...]`, regular expressions `%...%`. A term is matched as a substring of the
message; AWS matches it against the message's words, so `ERR` finds `ERROR` here and not on AWS.
"""
from __future__ import annotations

import re

from moto.logs import models
from moto.logs.exceptions import InvalidParameterException

from .fixes import FIXES, replace

TERM = re.compile(r'\s*([?-]?)("(?:[^"\\]|\\.)*"|[^\s"]+)')
UNSTRUCTURED_ONLY = ("{", "[", "%")


def problem(pattern: str) -> str:
    """AWS's reason for refusing the pattern, or "" when it takes it."""
    text = pattern.strip()
    for opening, closing in (("{", "}"), ("[", "]")):
        if text.startswith(opening) and not text.endswith(closing):
            return f"Invalid filter pattern: If a filter pattern starts with '{opening}' it must end with '{closing}'"
    if text.startswith(UNSTRUCTURED_ONLY):
        return ""
    if len(re.findall(r'(?<!\\)"', text)) % 2:
        return "Invalid filter pattern"
    if re.search(r'(?:^|\s)[?-]?""', text):
        return "Invalid filter pattern: Invalid character(s) in term '\"\"'"
    return ""


class Pattern:
    """What moto's EventMessageFilter was, with CloudWatch's terms."""

    def __init__(self, pattern: str):
        text = (pattern or "").strip()
        self.any_event = not text or text.startswith(UNSTRUCTURED_ONLY)
        self.required: list[str] = []
        self.optional: list[str] = []
        self.excluded: list[str] = []
        for sign, term in TERM.findall("" if self.any_event else text):
            word = term[1:-1].replace('\\"', '"') if term.startswith('"') else term
            {"": self.required, "?": self.optional, "-": self.excluded}[sign].append(word)

    def matches(self, message: str) -> bool:
        if self.any_event:
            return True
        return (all(word in message for word in self.required)
                and (not self.optional or any(word in message for word in self.optional))
                and not any(word in message for word in self.excluded))


models.EventMessageFilter = Pattern
FIXES.append("logs.EventMessageFilter")


@replace(models.LogsBackend, "filter_log_events")
def filter_log_events(original, self, log_group_name, log_stream_names, start_time, end_time, limit, next_token,
                      filter_pattern, interleaved):
    reason = problem(filter_pattern or "")
    if reason:
        raise InvalidParameterException(msg=reason)
    return original(self, log_group_name, log_stream_names, start_time, end_time, limit, next_token,
                    filter_pattern, interleaved)
