"""``smsdispatch send-file`` with generated CSV files (typer's CliRunner, real database and Redis):
well-formed, ragged, quoted, multi-line, BOM-prefixed, binary or not UTF-8 at all, the command ends with a
summary whose counts match the database, or with one error line and nothing written; never a traceback."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dispatcher.cli import app

from ..integration.pipeline_helpers import TXN, txn_text

TXN_ARGS = ["--channel", "transactional", "--sender-id", "SMSPNT", "--template-id", TXN["template_id"]]
TEMPLATE = "Dear {#var#}, your order {#var#} has been shipped and will reach you by {#var#}. - SMSPNT"

cells = st.one_of(
    st.from_regex(r"\A(\+91 ?|0)?[6-9][0-9]{9}\Z"), st.builds(txn_text, st.integers(0, 10**6)),
    st.text(max_size=40), st.text(st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", " ", "a,b", 'say "hi"', "line\nbreak", "\r\n", "x" * 31, "\x00", "é", "😀" * 3]))
headers = st.one_of(
    st.sampled_from([["number", "text"], ["to", "text"], [" Mobile ", "TEXT"], ["phone", "text", "extra"],
                     ["number", "name", "order", "date"], ["text"], ["name"], [], [""],
                     ["number", "number"]]),
    st.lists(st.text(max_size=8), max_size=4))


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Bytes of a CSV file: a header and ragged rows (csv-quoted), or raw text, or raw bytes."""
    kind = draw(st.sampled_from(["csv", "csv", "csv", "text", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(draw(headers))
    w.writerows(draw(st.lists(st.lists(cells, max_size=5), max_size=8)))
    data = buf.getvalue().encode()
    return (b"\xef\xbb\xbf" + data) if draw(st.booleans()) else data


def _run(stack, *args: str):
    return CliRunner().invoke(app, list(args), env=stack.env)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@example(data=b"number,text\r\n\r\n9995012345,hello\r\n\r\n", template=False)  # blank lines
@example(data=b"number,text\n9995012345,caf\xe9\n", template=False)  # Latin-1, not UTF-8
# a field over csv's own size limit
@example(data=b'number,text\n9995012345,"' + b"x" * 200_000 + b'"\n', template=False)
@example(data=b"\xef\xbb\xbfnumber,text\n6000000000\n", template=False)  # BOM; every row rejected
@given(data=csv_files(), template=st.booleans())
def test_send_file_with_any_csv_is_a_summary_or_one_error_line(make_stack, tmp_path_factory, data, template):
    """Any CSV: a summary matching the database, or one error line and no row; never a traceback."""
    stack = _stack(make_stack)
    path = tmp_path_factory.mktemp("csv") / "file.csv"
    path.write_bytes(data)
    before = sum(stack.counts().values())
    extra = ["--template", TEMPLATE] if template else []
    result = _run(stack, "send-file", str(path), *TXN_ARGS, *extra, "--json")
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    written = sum(stack.counts().values()) - before
    try:
        summary = json.loads(result.stdout)
    except ValueError:
        summary = None
    if summary is not None:  # the file was read: every row is enqueued or rejected
        assert summary["enqueued"] + summary["rejected"] == summary["rows"], summary
        assert written == summary["enqueued"]
        assert result.exit_code == (1 if summary["rejected"] and not summary["enqueued"] else 0), summary
        if summary["rejected"]:
            with open(summary["rejects_file"], newline="", encoding="utf-8") as fh:
                assert len(list(csv.DictReader(fh))) == summary["rejected"]
    else:  # refused as a whole (header, encoding, CSV syntax): one error line, nothing written
        assert result.exit_code in (1, 2), output
        assert written == 0
        assert result.stderr.startswith("smsdispatch") and "error" in result.stderr, output


_stacks: dict[int, object] = {}


def _stack(make_stack):
    """One stack per test run (hypothesis calls the test body many times with the same fixtures)."""
    key = id(make_stack)
    if key not in _stacks:
        _stacks.clear()
        _stacks[key] = make_stack()
    return _stacks[key]
