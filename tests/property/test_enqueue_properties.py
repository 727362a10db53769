"""send_sms / send_bulk under random input: they return ids or raise a typed dispatcher error (the
ValidationError family, BulkValidationError, IdempotencyConflict), and a refused request writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.errors import (
    BulkValidationError,
    DispatcherError,
    IdempotencyConflict,
    MessageNotFound,
    ValidationError,
)

from ..integration.pipeline_helpers import TXN, txn_text

PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])

any_char = st.characters(codec=None, exclude_categories=())  # includes controls and lone surrogates
junk = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=12),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                     max_size=2))


def mostly(valid: st.SearchStrategy, *bad: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` three times in four: a request is then usually wrong in one or two fields only, so the
    checks behind the first ones (storage, the database's own limits) are reached too."""
    return st.one_of(valid, valid, valid, st.one_of(*bad))


numbers = mostly(
    st.from_regex(r"\A(\+91|91|0)?[6-9][0-9]{9}\Z"),  # mostly valid Indian mobiles
    st.from_regex(r"\A\+(1|44|86|971|92|880)[0-9]{8,11}\Z"),  # other countries
    st.from_regex(r"\A\+?91[ -]?[0-9 ()./-]{8,14}\Z"),  # formatted, landlines, wrong lengths
    st.text(any_char, max_size=20), st.integers(-10, 10**13), junk)
texts = mostly(st.one_of(st.builds(txn_text, st.integers(0, 10**6)), st.text(min_size=1, max_size=200)),
               st.text(any_char, max_size=50), st.sampled_from(["", " ", "\t\n ", "a" * 766, "ठ" * 336,
                                                                "x\x00y", "\ud800", "ok\x1b[31m"]),
               st.text(st.sampled_from("ab €[]{}~^|\\"), min_size=150, max_size=800), junk)
channels = mostly(st.sampled_from(["transactional", "otp", "promotional", "OTP", " Transactional "]),
                  st.text(max_size=12), junk)
bad_ids = (st.text(any_char, min_size=1, max_size=70), st.sampled_from(["a|b", "x" * 33, "x" * 65, "SMS\x00",
                                                                        "\ud800", "tab\there", " "]), junk)
senders = mostly(st.sampled_from([TXN["sender_id"], "OTPSMS", "x" * 32]), *bad_ids)
templates = mostly(st.sampled_from([TXN["template_id"], "1" * 64]), *bad_ids)
send_ats = mostly(st.none(), st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5.5)),
                                                                      timezone(timedelta(hours=-12))])),
                  st.datetimes(), st.sampled_from([datetime.max.replace(tzinfo=UTC),
                                                   datetime.min.replace(tzinfo=timezone(timedelta(hours=-1)))]),
                  junk)
metadata = mostly(st.none(), st.dictionaries(st.text(max_size=8), st.recursive(
    st.one_of(st.none(), st.integers(), st.floats(), st.text(any_char, max_size=20)),
    lambda inner: st.lists(inner, max_size=3), max_leaves=8), max_size=4),
    st.just({"big": "x" * 5000}), st.just({"obj": object()}), st.just({1: "int key"}), junk)
keys = mostly(st.none(), st.text(any_char, max_size=210), st.sampled_from(["k1", "k2", "", "k\x00"]), junk)


def _typed(exc: BaseException) -> bool:
    return isinstance(exc, ValidationError | IdempotencyConflict)


@PROPS
@given(to=numbers, text=texts, channel=channels, sender=senders, template=templates, when=send_ats,
       meta=metadata, key=keys)
def test_send_sms_returns_an_id_or_a_typed_error_and_writes_nothing_on_error(
        enqueuer, to, text, channel, sender, template, when, meta, key):
    """send_sms with anything: an id (one row, or the earlier one for its key) or a typed error, no row."""
    before = enqueuer.rows()
    try:
        mid = enqueuer.dispatcher.send_sms(to, text, channel=channel, sender_id=sender, template_id=template,
                                           idempotency_key=key, send_at=when, metadata=meta)
    except DispatcherError as exc:
        assert _typed(exc), f"untyped dispatcher error {type(exc).__name__}: {exc}"
        assert enqueuer.rows() == before
        return
    assert isinstance(mid, str) and len(mid) == 32
    assert enqueuer.rows() - before in ((0, 1) if key is not None else (1,))


FIELDS = {"to": numbers, "text": texts, "channel": channels, "sender_id": senders, "template_id": templates,
          "send_at": send_ats, "metadata": metadata, "idempotency_key": keys}
#: Anything at all for one field, including the characters and lengths a database column refuses.
ANYTHING = st.one_of(st.text(any_char, max_size=80), st.text(max_size=300), junk,
                     st.sampled_from(["\x00", "a\x00b", "\ud800", "x" * 33, "1" * 65, "x" * 201]))


@PROPS
@given(field=st.sampled_from(sorted(FIELDS)), data=st.data())
def test_one_bad_field_of_a_valid_request_is_a_typed_error(enqueuer, field, data):
    """A valid request with one field replaced by anything: an id, or a typed error and no row written."""
    value = data.draw(st.one_of(FIELDS[field], ANYTHING), label=field)
    request = {"to": "9995012345", "text": txn_text(data.draw(st.integers(0, 10**6))), **TXN,
               "idempotency_key": None, "send_at": None, "metadata": None, field: value}
    to, text = request.pop("to"), request.pop("text")
    before = enqueuer.rows()
    try:
        enqueuer.dispatcher.send_sms(to, text, **request)
    except DispatcherError as exc:
        assert _typed(exc), f"untyped dispatcher error {type(exc).__name__}: {exc}"
        assert enqueuer.rows() == before
        return
    assert enqueuer.rows() - before in (0, 1)


rows = st.lists(st.one_of(st.tuples(numbers, texts),
                          st.fixed_dictionaries({"number": numbers, "text": texts}),
                          st.fixed_dictionaries({"to": numbers, "text": texts}),
                          st.just({"text": "no number"}),
                          st.just(("only-one",)), junk), max_size=12)


@PROPS
@given(batch=rows, channel=channels, sender=senders, template=templates, skip=st.booleans(),
       chunk=st.integers(1, 4))
def test_send_bulk_is_all_or_nothing(enqueuer, batch, channel, sender, template, skip, chunk):
    """send_bulk: every row enqueued or rejected by index; without skip_invalid, a bad row writes nothing."""
    before = enqueuer.rows()
    try:
        result = enqueuer.dispatcher.send_bulk(batch, channel=channel, sender_id=sender, template_id=template,
                                               skip_invalid=skip, chunk_size=chunk)
    except BulkValidationError as exc:
        assert not skip and exc.rejects and exc.total == len(batch)
        assert sorted({r.index for r in exc.rejects}) == [r.index for r in exc.rejects]
        assert enqueuer.rows() == before
        return
    except DispatcherError as exc:
        assert isinstance(exc, ValidationError), f"{type(exc).__name__}: {exc}"
        assert enqueuer.rows() == before
        return
    rejected = {r.index for r in result.rejects}
    assert len(result) + len(rejected) == len(batch) and all(0 <= i < len(batch) for i in rejected)
    assert skip or not rejected
    assert enqueuer.rows() - before == len(result)


class Boom(Exception):
    pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(good=st.integers(0, 12), chunk=st.integers(1, 5))
def test_send_bulk_whose_input_fails_midway_writes_nothing(enqueuer, good, chunk):
    """A row source that raises after some valid rows (chunks already written): nothing is left."""
    def source():
        for i in range(good):
            yield f"99950{i:05d}", txn_text(i)
        raise Boom("the caller's file broke")

    before = enqueuer.rows()
    with pytest.raises(Boom):
        enqueuer.dispatcher.send_bulk(source(), chunk_size=chunk, **TXN)
    assert enqueuer.rows() == before


@PROPS
@given(message_id=st.one_of(st.text(any_char, max_size=80), junk, st.just("\x00"), st.just("\ud800")))
def test_get_status_of_anything_is_a_status_or_message_not_found(enqueuer, message_id):
    """get_status with any id: MessageNotFound for ids that are not ours, never a database error."""
    with pytest.raises(MessageNotFound):
        enqueuer.dispatcher.get_status(message_id)
