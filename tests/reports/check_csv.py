#!/usr/bin/env python3
"""Reads a report file with Python's csv module and compares it with the
rows Nova's service returns (written by nova_reports.js --rows).

usage: check_csv.py FILE EXPECTED_JSON

Checks: the bytes are UTF-8, every record ends with CRLF (RFC 4180), the
header is the column names in Nova's order, and every row, cell by cell,
is what node-pg gave Nova (commas, quotes, newlines and non-ASCII
included). Prints the number of rows.
"""
import csv
import io
import json
import sys


def main():
    path, expected_path = sys.argv[1], sys.argv[2]
    raw = open(path, "rb").read()
    text = raw.decode("utf-8")  # raises on anything that is not UTF-8
    if raw and not raw.endswith(b"\r\n"):
        sys.exit(f"check_csv: {path} does not end with CRLF")
    expected = json.load(open(expected_path, encoding="utf-8"))
    records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    if not records:
        sys.exit(f"check_csv: {path} is empty (no header)")
    header, rows = records[0], records[1:]
    if expected["header"] is not None and header != expected["header"]:
        sys.exit(f"check_csv: header {header} != {expected['header']}")
    if len(rows) != len(expected["rows"]):
        sys.exit(f"check_csv: {len(rows)} rows, Nova has {len(expected['rows'])}")
    for i, (got, want) in enumerate(zip(rows, expected["rows"])):
        if got != want:
            for j, (g, w) in enumerate(zip(got, want)):
                if g != w:
                    sys.exit(f"check_csv: row {i + 1}, column {header[j]}: {g!r} != {w!r}")
            sys.exit(f"check_csv: row {i + 1}: {got!r} != {want!r}")
    print(len(rows))


main()
