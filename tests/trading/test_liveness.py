"""Liveness: check_ledger and the periodic auditor see a stalled pipeline, not just the books.

Real services, real PostgreSQL and Redis, no loops unless a test starts them: an accepted
order nobody matches, an outbox row nobody publishes, and events the real matching loop
wrote that nobody settles each fail the audit, naming the market and the check, until the
missing piece runs.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.checks import run_ledger_checks
from accounts.models import Asset, Balance, User
from exchange.celery import app
from markets.models import Market
from tests.conftest import fund
from tests.trading.pipeline_helpers import ROOT, start_loops, wait_settled, worker_env
from trading import liveness
from trading.models import Order, OutboxEntry, SettlementCursor
from trading.redis import get_redis, reset_redis_clients
from trading.services.orders import place_order
from trading.services.outbox import sweep_outbox
from trading.streams import consumed_key, input_stream, output_stream
from trading.tasks import audit_exchange
from trading.validation import OrderSpec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_db")]

D = Decimal
UNMATCHED = "liveness accepted but unmatched"
UNSETTLED = "liveness matched but unsettled"
UNPUBLISHED = "liveness outbox unpublished"
DEAD_REDIS = "redis://127.0.0.1:1/7"  # nothing listens on port 1: connection refused at once


def limit(side: str, price: str, quantity: str) -> OrderSpec:
    return OrderSpec(side=side, price=D(price), quantity=D(quantity))


@pytest.fixture
def funded(alice: User, bob: User, assets: dict[str, Asset], btc_usdt: Market) -> Market:
    fund(alice, assets["BTC"], "2")
    fund(bob, assets["USDT"], "200000")
    return btc_usdt


def place_crossing_pair(alice: User, bob: User, market: Market) -> tuple[Order, Order]:
    sell = place_order(user=alice, market=market, spec=limit("sell", "50000", "1"))
    buy = place_order(user=bob, market=market, spec=limit("buy", "50100", "0.4"))
    return sell, buy


def age(model: type[Order] | type[OutboxEntry], seconds: float) -> None:
    model.objects.update(created_at=timezone.now() - timedelta(seconds=seconds))


def check_ledger(*args: str) -> tuple[str, str | None]:
    """(stdout, "exit <status>: <error>" or None) of an in-process check_ledger run."""
    out = StringIO()
    try:
        call_command("check_ledger", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), f"exit {exc.returncode}: {exc}"
    return out.getvalue(), None


def failing(out: str) -> list[str]:
    return re.findall(r"^FAIL (.+): \d+ violation\(s\)$", out, flags=re.MULTILINE)


def match_without_settling(market: Market, timeout: float = 20) -> None:
    """Run the real matching loop alone until it has applied the whole input stream."""
    client = get_redis()
    loops = start_loops([market.symbol], settlement=False)
    try:
        deadline = time.monotonic() + timeout
        while True:
            # Re-read the tail: a command's after-commit XADD may still be on its way.
            published = not OutboxEntry.objects.filter(published_at__isnull=True).exists()
            tail = client.xrevrange(input_stream(market.symbol), count=1)[0][0]
            if published and client.get(consumed_key(market.symbol)) == tail:
                break
            assert all(t.is_alive() for t in loops.threads), loops.results
            assert time.monotonic() < deadline, "the matching loop did not catch up"
            time.sleep(0.02)
    finally:
        loops.join()
    assert not any(isinstance(r, BaseException) for r in loops.results.values()), loops.results


def settle(market: Market) -> None:
    loops = start_loops([market.symbol])
    try:
        wait_settled([market.symbol])
    finally:
        loops.join()


def test_unmatched_order_fails_until_the_loops_run(alice: User, bob: User, funded: Market) -> None:
    sell, _ = place_crossing_pair(alice, bob, funded)
    fresh_out, fresh_error = check_ledger()
    age(Order, 60)

    out, error = check_ledger("--max-age", "30")

    assert (fresh_error, fresh_out.splitlines()[-1]) == (None, "ledger clean")
    assert failing(out) == [UNMATCHED]
    assert re.search(
        rf"^       - BTC-USDT: 2 order\(s\) accepted but not matched after 30 s,"
        rf" oldest 6\d\.\d s \(order #{sell.pk}\)$",
        out,
        flags=re.MULTILINE,
    ), out
    assert error == "exit 1: pipeline stalled: 1 overdue item(s) older than 30 s"

    settle(funded)

    out, error = check_ledger("--max-age", "30")
    assert (error, out.splitlines()[-1]) == (None, "ledger clean")


def test_exit_status_and_default_limit_in_a_real_process(alice: User, funded: Market) -> None:
    order = place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    age(Order, 60)
    run = [sys.executable, str(ROOT / "manage.py"), "check_ledger"]

    stalled = subprocess.run(  # noqa: S603 - our own manage.py
        run, env=worker_env(LIVENESS_MAX_AGE_SECONDS="45"), capture_output=True, text=True
    )
    patient = subprocess.run(  # noqa: S603
        run, env=worker_env(LIVENESS_MAX_AGE_SECONDS="90"), capture_output=True, text=True
    )

    assert stalled.returncode == 1, stalled.stderr
    assert f"FAIL {UNMATCHED}: 1 violation(s)" in stalled.stdout
    assert "BTC-USDT: 1 order(s) accepted but not matched after 45 s" in stalled.stdout
    assert f"(order #{order.pk})" in stalled.stdout
    assert "pipeline stalled: 1 overdue item(s) older than 45 s" in stalled.stderr
    assert patient.returncode == 0, patient.stdout + patient.stderr
    assert patient.stdout.splitlines()[-1] == "ledger clean"


def test_unpublished_outbox_row_fails_until_swept(alice: User, funded: Market, settings) -> None:
    good_url = settings.REDIS_URL
    settings.REDIS_URL = DEAD_REDIS  # the after-commit XADD fails: the row stays unpublished
    reset_redis_clients()
    order = place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    settings.REDIS_URL = good_url
    reset_redis_clients()
    entry = OutboxEntry.objects.get()
    age(OutboxEntry, 40)
    age(Order, 40)

    out, error = check_ledger()  # the default limit: settings.LIVENESS_MAX_AGE_SECONDS = 30

    assert failing(out) == [UNMATCHED, UNPUBLISHED]
    assert re.search(
        rf"^       - BTC-USDT: 1 outbox row\(s\) not published after 30 s,"
        rf" oldest 4\d\.\d s \(row #{entry.pk}\)$",
        out,
        flags=re.MULTILINE,
    ), out
    assert error == "exit 1: pipeline stalled: 2 overdue item(s) older than 30 s"

    assert sweep_outbox() == 1
    out, _ = check_ledger()
    assert failing(out) == [UNMATCHED]  # published now, but still nobody matches it

    settle(funded)
    out, error = check_ledger()
    assert (error, out.splitlines()[-1]) == (None, "ledger clean")
    order.refresh_from_db()
    assert order.accepted_seq is not None


def test_matched_but_unsettled_fails_until_settlement_runs(
    alice: User, bob: User, funded: Market
) -> None:
    place_crossing_pair(alice, bob, funded)
    match_without_settling(funded)
    [(_, fields)] = get_redis().xrange(output_stream(funded.symbol))
    time.sleep(0.3)

    out, error = check_ledger("--max-age", "0.2")

    assert (fields[b"a"], fields[b"z"]) == (b"1", b"5")
    # Also unmatched, as far as the database knows: settlement records the acceptance.
    assert failing(out) == [UNMATCHED, UNSETTLED]
    assert re.search(
        r"^       - BTC-USDT: 5 event\(s\) \(seq 1\.\.5\) matched but not settled after 0\.2 s,"
        r" oldest 0\.\d s \(settlement cursor at seq 0\)$",
        out,
        flags=re.MULTILINE,
    ), out
    assert error == "exit 1: pipeline stalled: 2 overdue item(s) older than 0.2 s"

    settle(funded)

    out, error = check_ledger("--max-age", "0")
    assert (error, out.splitlines()[-1]) == (None, "ledger clean")
    assert SettlementCursor.objects.get(market=funded).last_seq == 5


def test_oldest_unsettled_entry_is_found_behind_settled_ones(
    alice: User, bob: User, funded: Market
) -> None:
    place_crossing_pair(alice, bob, funded)
    settle(funded)  # these entries stay in the stream (trimmed only every 50 batches)
    time.sleep(1.0)
    place_order(user=alice, market=funded, spec=limit("sell", "50200", "0.1"))
    match_without_settling(funded)
    entries = get_redis().xrange(output_stream(funded.symbol))

    [violation] = liveness.matched_but_unsettled(0)

    settled_ms, unsettled_ms = (int(entry_id.split(b"-")[0]) for entry_id, _ in entries)
    assert unsettled_ms - settled_ms >= 1000
    seconds = float(re.search(r"oldest (\d+\.\d) s", violation).group(1))  # type: ignore[union-attr]
    assert seconds < 0.9  # the unsettled entry's age, not the settled one's
    assert violation.startswith(
        "BTC-USDT: 2 event(s) (seq 6..7) matched but not settled after 0 s, oldest"
    )
    settle(funded)


@pytest.mark.parametrize("last_seq", [0, 1, 57, 58, 59, 137, 249])
def test_bisection_finds_the_first_unsettled_entry(funded: Market, last_seq: int) -> None:
    # 100 milliseconds 3 ms apart holding 1 to 4 entries each (explicit ids), seqs 1..250;
    # the first 20 entries come from a deposed owner (token 2): fenced, never owed.
    client = get_redis()
    SettlementCursor.objects.create(market=funded, last_seq=last_seq, fence_token=3)
    base_ms = 1_700_000_000_000
    ms_of_seq = {}
    pipe = client.pipeline(transaction=False)
    seq = 0
    for k in range(100):
        for n in range(k % 4 + 1):
            seq += 1
            ms_of_seq[seq] = base_ms + 3 * k
            fields = {"e": b"[]", "t": 2 if seq <= 20 else 3, "a": seq, "z": seq}
            pipe.xadd(output_stream(funded.symbol), fields, id=f"{base_ms + 3 * k}-{n}")
    pipe.execute()
    newest = client.xrevrange(output_stream(funded.symbol), count=1)[0]

    oldest = liveness._oldest_unsettled_ms(
        client, liveness._Cursor(funded.symbol, last_seq, 3), newest
    )

    assert oldest == ms_of_seq[max(last_seq + 1, 21)]
    client.delete(output_stream(funded.symbol))


def test_fenced_entries_of_a_deposed_owner_are_not_overdue(funded: Market) -> None:
    client = get_redis()
    SettlementCursor.objects.create(market=funded, last_seq=0, fence_token=5)
    client.xadd(output_stream(funded.symbol), {"e": b"[]", "t": 4, "a": 1, "z": 3})

    assert liveness.matched_but_unsettled(0) == []


def test_each_check_is_one_query_whatever_the_number_of_markets(
    alice: User,
    assets: dict[str, Asset],
    btc_usdt: Market,
    eth_usdt: Market,
    usdt_irt: Market,
    django_assert_num_queries,
) -> None:
    fund(alice, assets["BTC"], "1")
    fund(alice, assets["ETH"], "1")
    place_order(user=alice, market=btc_usdt, spec=limit("sell", "50000", "0.5"))
    place_order(user=alice, market=eth_usdt, spec=limit("sell", "3000", "0.5"))
    age(Order, 60)

    with django_assert_num_queries(3):
        found = (
            liveness.accepted_but_unmatched(30)
            + liveness.matched_but_unsettled(30)
            + liveness.outbox_unpublished(30)
        )

    assert [line.split(":")[0] for line in found] == ["BTC-USDT", "ETH-USDT"]


def test_unreachable_redis_is_a_violation(funded: Market, settings) -> None:
    settings.REDIS_URL = DEAD_REDIS
    reset_redis_clients()

    [violation] = liveness.matched_but_unsettled(30)

    assert violation.startswith("the output streams cannot be read: ")


def test_money_checks_alone_leave_liveness_out(alice: User, funded: Market) -> None:
    place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    age(Order, 60)

    assert run_ledger_checks().ok
    assert run_ledger_checks(liveness_max_age_seconds=30).failed() == [UNMATCHED]


def test_periodic_auditor_logs_liveness_at_error_and_money_at_critical(
    alice: User, funded: Market, caplog, ledger_drift
) -> None:
    place_order(user=alice, market=funded, spec=limit("sell", "50000", "1"))
    age(Order, 60)
    Balance.objects.filter(user=alice, asset=funded.base).update(available=D("5"))

    with caplog.at_level(logging.ERROR, logger="trading.liveness"):
        audit_exchange.apply()

    logged = [(r.levelno, r.getMessage().split(":")[1].strip()) for r in caplog.records]
    assert (logging.ERROR, UNMATCHED) in logged
    assert (logging.CRITICAL, "INV-4 balances equal postings") in logged
    assert {level for level, name in logged if name.startswith("liveness")} == {logging.ERROR}
    assert {level for level, name in logged if not name.startswith("liveness")} == {
        logging.CRITICAL
    }
    [unmatched] = [r.getMessage() for r in caplog.records if UNMATCHED in r.getMessage()]
    assert "BTC-USDT: 1 order(s) accepted but not matched after 30 s" in unmatched


def test_auditor_runs_every_30_seconds_from_beat() -> None:
    entry = app.conf.beat_schedule["trading.audit_exchange"]

    assert (entry["task"], entry["schedule"]) == ("trading.tasks.audit_exchange", 30.0)
