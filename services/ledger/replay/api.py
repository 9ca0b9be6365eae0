"""The command line, `grantline-replay` (the sub-package's docs say what it does)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from services.ledger.replay.domain import ReplayError
from services.ledger.replay.handlers import run_replay
from shared.config.cli import ToolError, tool_settings
from shared.db.preflight import SchemaMissing, require_tables

EXIT_EQUAL, EXIT_DIFFERENT, EXIT_FAILED = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grantline-replay",
        description="Rebuild the ledger from the event history into a scratch schema and compare it with the "
                    "live ledger. Exit 0 when equal, 1 with the differences, 2 when the replay could not run.",
    )
    parser.add_argument("--source", choices=("broker", "outbox"), default="broker",
                        help="where the assessments come from: the broker's topic from the beginning, or the "
                             "eligibility service's outbox (its event history) (default: broker)")
    parser.add_argument("--schema", help="scratch schema (default: ledger_replay_<timestamp>)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch schema afterwards")
    parser.add_argument("--progress-every", type=int, default=10_000, metavar="N",
                        help="a progress line on stderr every N events (default 10000)")
    parser.add_argument("--live-schema", default="ledger", help=argparse.SUPPRESS)
    parser.add_argument("--eligibility-schema", default="eligibility", help=argparse.SUPPRESS)
    parser.add_argument("--intake-schema", default="intake", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        settings = tool_settings("grantline-replay", needs_broker=args.source == "broker")
        asyncio.run(require_tables(settings.database_url, args.live_schema, ("journal_entries", "pools")))
        if args.source == "outbox":
            asyncio.run(require_tables(settings.database_url, args.eligibility_schema, ("outbox",)))
    except ToolError as exc:
        print(exc.sentence, file=sys.stderr)
        return EXIT_FAILED
    except SchemaMissing as exc:
        print(f"grantline-replay: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        report = asyncio.run(run_replay(
            settings.database_url, source=args.source, schema=args.schema, keep=args.keep,
            bootstrap=settings.kafka_bootstrap_servers, namespace=settings.topic_namespace,
            live_schema=args.live_schema, eligibility_schema=args.eligibility_schema, intake_schema=args.intake_schema,
            progress_every=max(1, args.progress_every),
        ))
    except ReplayError as exc:
        print(f"grantline-replay: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        print(f"grantline-replay: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(report.summary())
    return EXIT_EQUAL if report.equal else EXIT_DIFFERENT


if __name__ == "__main__":
    sys.exit(main())
