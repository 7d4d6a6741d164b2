"""report.json: every number of the run, per model × route × runtime × grid point."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from graphmint.pipeline.run.results import ModelResult


def json_report(results: Sequence[ModelResult]) -> str:
    from graphmint.pipeline.publish.manifest import GRAPHMINT_VERSION, json_default

    data = {
        "graphmint": GRAPHMINT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": all(m.ok for m in results),
        "models": [
            {
                **m.dump(),
                "ok": m.ok,
                "published": str(m.published) if m.published else None,
                "cached": m.cached,
            }
            for m in results
        ],
    }
    return json.dumps(data, indent=2, default=json_default) + "\n"
