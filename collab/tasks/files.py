"""Problems from a JSONL file of traces, for training on a solver of your own: one problem a line,
`{"question": ..., "trace": TRACE, "answer": ... (optional), "sequential": TRACE (optional)}`,
TRACE as `trace.to_json` writes it (a text, or a list of texts and forks). Errors name the line.
Pure Python, no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from .problem import Problem
from .trace import Fork, Trace, from_json

FIELDS = {"question", "trace", "answer", "sequential", "id"}


def load(path) -> list[Problem]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file {str(path)!r} does not exist: give a JSONL file, one problem a line")
    problems = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("expected a JSON object")
            missing, unknown = {"question", "trace"} - set(row), set(row) - FIELDS
            if missing or unknown:
                raise ValueError(f"missing {sorted(missing)}" if missing else f"unknown field(s) {sorted(unknown)}; "
                                 f"fields are {', '.join(sorted(FIELDS))}")
            parallel = from_json(row["trace"])
            sequential = from_json(row["sequential"]) if "sequential" in row else _flat(parallel)
            problems.append(Problem("file", str(row.get("id", n)), row["question"], str(row.get("answer", "-")),
                                    sequential, parallel))
        except (ValueError, TypeError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise ValueError(f"{path} line {n}: {msg}") from None
    if not problems:
        raise ValueError(f"trace file {str(path)!r} holds no problems")
    return problems


def _flat(trace: Trace) -> Trace:
    """The sequential trace a forking one implies: its texts, each fork's work in turn."""
    if not trace.forks:
        return trace
    lines = []
    for part in trace.parts:
        if isinstance(part, Fork):
            lines += [c.text for c in part.children] + [part.conclusion]
        else:
            lines.append(part.text)
    return Trace.of("\n".join(lines))
