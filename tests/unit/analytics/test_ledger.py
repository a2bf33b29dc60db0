"""Average-cost PnL per (bot, symbol): hand-made sequences with known answers, and agreement with
an independent exact simulation on generated sequences."""
from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.analytics.books import daily, replay
from shared.analytics.ledger import SymbolLedger
from tests.unit.analytics.fillgen import fill, fill_sequences
from tests.unit.analytics.reference import simulate

TOL = Fraction(1, 10**15)


def close(a: Decimal, b: Fraction) -> bool:
    return abs(Fraction(a) - b) <= TOL


def test_partial_closes_use_the_average_entry_and_fees_make_a_flat_trip_a_loss() -> None:
    fills = [
        fill(1, "Buy", "1", "100", "0.1"),
        fill(2, "Buy", "1", "110", "0.1"),  # avg entry 105
        fill(3, "Sell", "0.5", "120", "0.05"),  # 0.5 x (120 - 105) = +7.5
        fill(4, "Sell", "1.5", "100", "0.15"),  # 1.5 x (100 - 105) = -7.5
    ]
    books = replay(fills)
    assert [e.realised for e in books.effects] == [0, 0, Decimal("7.5"), Decimal("-7.5")]
    (trip,) = books.trips
    assert trip.direction == "long"
    assert trip.realised == 0
    assert trip.fees == Decimal("0.4")
    assert trip.net == Decimal("-0.4")
    assert books.open_positions == ()


def test_flip_long_to_short_splits_the_fill_and_its_fee() -> None:
    fills = [
        fill(1, "Buy", "2", "100", "0.2"),
        fill(2, "Sell", "3", "90", "0.3"),  # closes 2 at -10 each (-20), opens short 1 @ 90
        fill(3, "Funding", "1", "91", "0.5", exec_type="Funding"),  # short pays funding 0.5
        fill(4, "Buy", "1", "80", "0.1"),  # short closes: 1 x (90 - 80) = +10
    ]
    books = replay(fills)
    first, second = books.trips
    assert (first.direction, first.realised, first.fees) == ("long", Decimal(-20), Decimal("0.4"))
    assert first.net == Decimal("-20.4")
    assert (second.direction, second.realised, second.fees, second.funding) == (
        "short", Decimal(10), Decimal("0.2"), Decimal("0.5"))
    assert second.net == Decimal("9.3")
    assert second.opened_at == fills[1].exec_time
    realised = sum((e.realised for e in books.effects), Decimal(0))
    costs = sum((e.fee + e.funding for e in books.effects), Decimal(0))
    assert (realised, costs) == (Decimal(-10), Decimal("1.1"))


def test_funding_is_a_cost_and_never_moves_the_position() -> None:
    ledger = SymbolLedger("momentum_001", "BTCUSDT")
    ledger.apply(fill(1, "Sell", "2", "50"))
    effect = ledger.apply(fill(2, "Buy", "2", "51", "-0.25", exec_type="Funding"))  # funding received
    assert (effect.realised, effect.fee, effect.funding) == (0, 0, Decimal("-0.25"))
    assert ledger.qty == Decimal(-2)
    assert ledger.open_position().avg_entry == Decimal(50)


def test_funding_while_flat_counts_in_totals_but_in_no_trip() -> None:
    books = replay([
        fill(1, "Buy", "1", "10"), fill(2, "Sell", "1", "12"),
        fill(3, "Sell", "1", "12", "0.3", exec_type="Funding"),
    ])
    (trip,) = books.trips
    assert trip.net == Decimal(2)
    (day,) = daily(books)
    assert day.totals.net == Decimal("1.7")
    assert day.totals.trades == 2


def test_adl_closes_the_position_but_is_not_counted_as_a_trade() -> None:
    books = replay([fill(1, "Buy", "1", "100"), fill(2, "Sell", "1", "95", exec_type="AdlTrade")])
    (trip,) = books.trips
    assert trip.net == Decimal(-5)
    (day,) = daily(books)
    assert (day.totals.trades, day.totals.volume) == (1, Decimal(100))


def test_out_of_order_arrival_changes_nothing() -> None:
    fills = [
        fill(1, "Buy", "1", "100", minutes=0, seq=5),
        fill(2, "Buy", "1", "120", minutes=0, seq=6),  # same instant: seq decides
        fill(3, "Sell", "1.5", "130", "0.2", minutes=10),
        fill(4, "Sell", "1", "90", minutes=10, seq=7),  # same instant and seq as nothing else
        fill(5, "Buy", "0.5", "95", minutes=30),
    ]
    expected = replay(fills)
    for seed in range(10):
        shuffled = fills[:]
        random.Random(seed).shuffle(shuffled)
        assert replay(shuffled) == expected


def test_a_ledger_refuses_fills_older_than_what_it_has_applied() -> None:
    ledger = SymbolLedger("momentum_001", "BTCUSDT")
    ledger.apply(fill(2, "Buy", "1", "100"))
    try:
        ledger.apply(fill(1, "Buy", "1", "100"))
    except ValueError as exc:
        assert "older" in str(exc)
    else:
        raise AssertionError("an out-of-order fill was accepted")


@settings(max_examples=150, deadline=None)
@given(fill_sequences())
def test_agrees_with_an_independent_simulation(fills) -> None:
    books = replay(fills)
    ref = simulate(fills)
    for effect in books.effects:
        fid = effect.fill.exec_id
        assert close(effect.realised, ref.realised_by_fill[fid])
        assert effect.fee == ref.fee_by_fill[fid]
        assert effect.funding == ref.funding_by_fill[fid]
    assert len(books.trips) == len(ref.trips)
    for mine, theirs in zip(sorted(books.trips, key=lambda t: (t.closed_at, t.opened_at)),
                            sorted(ref.trips, key=lambda t: (t.closed_at, t.opened_at))):
        assert (mine.opened_at, mine.closed_at) == (theirs.opened_at, theirs.closed_at)
        assert close(mine.net, theirs.net)
    open_by_key = {(p.bot_id, p.symbol): p for p in books.open_positions}
    for key, qty in ref.position.items():
        if qty == 0:
            assert key not in open_by_key
        else:
            assert Fraction(open_by_key[key].qty) == qty
            assert close(open_by_key[key].avg_entry, ref.avg_entry[key])


@settings(max_examples=100, deadline=None)
@given(fill_sequences())
def test_realised_to_date_is_cash_flow_plus_open_cost(fills) -> None:
    books = replay(fills)
    realised = sum((e.realised for e in books.effects), Decimal(0))
    cash = sum((-e.fill.signed_qty * e.fill.exec_price for e in books.effects if e.fill.moves_position), Decimal(0))
    open_cost = sum((p.open_cost for p in books.open_positions), Decimal(0))
    assert abs(realised - (cash + open_cost)) < Decimal("1e-15")


@settings(max_examples=60, deadline=None)
@given(fill_sequences(), st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_books(fills, rnd) -> None:
    shuffled = fills[:]
    rnd.shuffle(shuffled)
    assert replay(shuffled) == replay(fills)
