"""Scale-out: two instances each of eligibility and ledger in the same consumer groups, over
six partitions, decide exactly as one instance does; and a rebalance mid-batch (an extra
ledger SIGKILLed, another one joining, while the load runs) doubles nothing.

The same deterministic load runs twice (the fault tests' 240 GT-EQUITY applications over 20
enterprises, fixed applicants, subjects and amounts, each applicant's applications posted one
after another in the same order): once against a single-instance stack, once against the
scaled-out one. Decisions for one applicant are ordered by its partition key, so the
(applicant, subject) → (status, awarded, limited_by) maps must be equal."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from shared.kernel.uscc import ALPHABET, with_check_character
from tests.support.processes import ServiceProcess
from tests.support.scenarios import (
    APPLICATIONS,
    ENTERPRISES,
    check_outcome,
    load,
    open_scenario,
    run_with_fault,
)
from tests.support.waiting import eventually_sync

pytestmark = pytest.mark.e2e

PARTITIONS = 6
Decisions = dict[tuple[str, str], tuple[str, str, str | None]]


def fixed_enterprises() -> list[str]:
    rng = random.Random(20240318)
    return [
        with_check_character("91310115" + "".join(rng.choice(ALPHABET) for _ in range(9)))
        for _ in range(ENTERPRISES)
    ]


ENTERPRISE_IDS = fixed_enterprises()


def decisions_of(final: dict[str, dict[str, Any]]) -> Decisions:
    return {
        (b["applicant"]["id"], b["subject"]): (b["status"], b["decision"]["awarded"], b["decision"]["limited_by"])
        for b in final.values()
    }


def statuses_in_posting_order(decisions: Decisions) -> dict[str, list[str]]:
    """applicant → the statuses of its applications in the order they were posted."""
    order: dict[str, list[str]] = defaultdict(list)
    for body in load(ENTERPRISE_IDS):
        applicant = body["applicant"]["id"]
        order[applicant].append(decisions[(applicant, body["subject"])][0])
    return order


def wait_group_stable(bootstrap: str, group: str, members: int, timeout_s: float = 20) -> None:
    """Until the consumer group is Stable with `members` members (Tansu does not report assignments)."""

    async def describe() -> tuple[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            [response] = await admin.describe_consumer_groups([group])
            _error, _group, state, _ptype, _protocol, group_members = response.groups[0]
            return str(state), len(group_members)
        finally:
            await admin.close()

    eventually_sync(lambda: asyncio.run(describe()), f"{group} Stable with {members} members",
                    timeout_s=timeout_s, every_s=0.25, until=lambda last: last == ("Stable", members))


def applied(url: str, consumer: str) -> int:
    """Events this instance's consumer applied (its own process registry)."""
    page = httpx.get(url + "/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if (
                sample.name == "grantline_consumer_events_total"
                and sample.labels.get("consumer") == consumer
                and sample.labels.get("outcome") == "applied"
            ):
                total += sample.value
    return int(total)


@pytest.fixture(scope="module")
def one_instance(pg_admin_dsn: str, kafka_bootstrap: str) -> Decisions:
    """The reference: one instance of every service, same partitions, same load, same order."""
    with open_scenario(pg_admin_dsn, kafka_bootstrap, prefix="scale1-", partitions=PARTITIONS) as scenario:
        run_with_fault(scenario, lambda: None, ENTERPRISE_IDS, in_applicant_order=True)
        return decisions_of(check_outcome(scenario, ENTERPRISE_IDS))


def test_two_instances_decide_as_one_and_a_rebalance_mid_batch_doubles_nothing(
    pg_admin_dsn: str, kafka_bootstrap: str, one_instance: Decisions
) -> None:
    with open_scenario(pg_admin_dsn, kafka_bootstrap, prefix="scale2-", partitions=PARTITIONS) as scenario:
        stack = scenario.stack
        eligibility_2 = stack.start_extra_healthy("eligibility")
        ledger_2 = stack.start_extra_healthy("ledger")
        for consumer in ("eligibility.assess", "ledger.decide"):
            wait_group_stable(kafka_bootstrap, f"{scenario.namespace}grantline-{consumer}", members=2)
        seen: dict[str, int] = {}
        joined: list[ServiceProcess] = []

        def rebalance_mid_batch() -> None:
            # A quarter of the load is in: once the second ledger is deciding, SIGKILL it (a batch
            # in flight dies with it; the group moves its partitions after the session timeout),
            # then a third one joins (another rebalance while batches are in flight).
            n = eventually_sync(lambda: applied(ledger_2.url, "ledger.decide"),
                                "the second ledger deciding an assessment", timeout_s=20)
            seen["ledger_2_before_kill"] = n
            seen["ledger_1_at_kill"] = applied(stack.services["ledger"].url, "ledger.decide")
            assert ledger_2.proc is not None
            os.kill(ledger_2.proc.pid, signal.SIGKILL)
            ledger_2.proc.wait(timeout=20)
            joined.append(stack.start_extra_healthy("ledger"))

        run_with_fault(scenario, rebalance_mid_batch, ENTERPRISE_IDS, in_applicant_order=True)
        # Pools exactly full (== sum of awards), one decision per application, no journal award
        # entry twice for one application, /v1/audit/verify ok, every webhook received.
        final = check_outcome(scenario, ENTERPRISE_IDS)
        scaled = decisions_of(final)

        work = {
            "eligibility_1": applied(stack.services["eligibility"].url, "eligibility.assess"),
            "eligibility_2": applied(eligibility_2.url, "eligibility.assess"),
            "ledger_1": applied(stack.services["ledger"].url, "ledger.decide"),
            "ledger_2_before_kill": seen["ledger_2_before_kill"],
            "ledger_1_at_kill": seen["ledger_1_at_kill"],
            "ledger_3": applied(joined[0].url, "ledger.decide"),
        }
        print(f"\nscale-out: events applied per instance {work}")
        print(f"scale-out: statuses {sorted(Counter(v[0] for v in scaled.values()).items())}")

    assert len(one_instance) == len(scaled) == APPLICATIONS
    differing = {k: (one_instance.get(k), scaled.get(k)) for k in one_instance.keys() | scaled.keys()
                 if one_instance.get(k) != scaled.get(k)}
    assert differing == {}, f"{len(differing)} decisions differ, e.g. {sorted(differing.items())[:5]}"
    assert scaled == one_instance
    # Not a trivially equal map: every applicant's pool fills in its posting order (eight whole
    # awards, a ninth limited by the pool, the rest refused), and those orders differ per applicant.
    by_order = ["approved"] * 8 + ["partially_approved"] + ["rejected"] * (APPLICATIONS // len(ENTERPRISE_IDS) - 9)
    assert statuses_in_posting_order(scaled) == {e: by_order for e in ENTERPRISE_IDS}
    assert len({tuple(sorted(k[1] for k, v in scaled.items() if k[0] == e and v[0] == "approved"))
                for e in ENTERPRISE_IDS}) > 1
    # The work was really shared: both eligibility instances assessed applications.
    assert work["eligibility_1"] > 0 and work["eligibility_2"] > 0, work
