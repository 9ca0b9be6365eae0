"""What an export answers: the two file formats. The XLSX writer (XlsxWriter, constant_memory:
each row goes to a temporary file as it is written, so memory stays flat however many rows) and
CSV lines (UTF-8 with a byte-order mark, so Excel reads the Chinese; amounts as `12.34`).

Cells are written by type (write_string / write_number), never guessed: a name that starts with
`=` stays text in the XLSX, and in a CSV a text cell starting with `= + - @` (or a tab or carriage
return) gets a leading `'` so a spreadsheet does not run it as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter

from services.ledger.exports.domain import Column, Row
from shared.kernel.money import format_fen

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA = "text/csv; charset=utf-8"
BOM = "\ufeff".encode()
XLSX_ROWS_MAX = 1_048_575  # a worksheet's rows, less the header

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def yuan_decimal(amount_fen: int) -> Decimal:
    """Integer fen as an exact Decimal of yuan (12345 → Decimal('123.45')): the last step before a cell."""
    return Decimal(amount_fen).scaleb(-2)


class XlsxSheet:
    """One worksheet being written to `path`, header first, then rows in order (constant_memory
    cannot go back). Money columns are numbers in the `0.00` format, ints numbers, the rest text."""

    def __init__(self, path: Path, sheet: str, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.workbook = xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
            "strings_to_urls": False})
        self.sheet = self.workbook.add_worksheet(sheet[:31])
        self.money = self.workbook.add_format({"num_format": "0.00"})
        bold = self.workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        for i, c in enumerate(self.columns):
            self.sheet.set_column(i, i, c.width, self.money if c.kind == "money" else None)
            self.sheet.write_string(0, i, c.header, bold)
        self.sheet.freeze_panes(1, 0)
        self.rows = 0

    def add(self, rows: Iterable[Row]) -> None:
        write_string, write_number, money = self.sheet.write_string, self.sheet.write_number, self.money
        kinds = [c.kind for c in self.columns]
        for row in rows:
            if self.rows >= XLSX_ROWS_MAX:
                raise ValueError(f"an XLSX worksheet holds at most {XLSX_ROWS_MAX} rows: narrow the export")
            self.rows += 1
            r = self.rows
            for i, (kind, value) in enumerate(zip(kinds, row, strict=True)):
                if value is None or value == "":
                    continue
                if kind == "money":
                    # Decimal to the cell: XlsxWriter prints the number with 16 significant
                    # digits, exact for any amount in yuan with two decimals below 10^13.
                    write_number(r, i, yuan_decimal(value), money)
                elif kind == "int":
                    write_number(r, i, value)
                else:
                    write_string(r, i, str(value))

    def close(self) -> None:
        if self.rows:
            self.sheet.autofilter(0, 0, self.rows, len(self.columns) - 1)
        self.workbook.close()


def write_xlsx(path: Path, sheet: str, columns: Sequence[Column], pages: Iterable[Iterable[Row]]) -> int:
    """Every page of rows into one worksheet at `path`; the rows written."""
    book = XlsxSheet(path, sheet, columns)
    try:
        for page in pages:
            book.add(page)
    finally:
        book.close()
    return book.rows


def _text(value: Any) -> str:
    s = str(value)
    return "'" + s if s.startswith(_FORMULA_START) else s


def csv_header(columns: Sequence[Column]) -> bytes:
    return BOM + csv_lines(columns, [tuple(c.header for c in columns)], header=True)


def csv_lines(columns: Sequence[Column], rows: Iterable[Row], *, header: bool = False) -> bytes:
    """Rows as CSV lines (RFC 4180, CRLF); money as `12.34`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    kinds = [c.kind for c in columns]
    for row in rows:
        if header:
            writer.writerow(row)
            continue
        writer.writerow(["" if v is None else format_fen(v) if k == "money" else v if k == "int" else _text(v)
                         for k, v in zip(kinds, row, strict=True)])
    return out.getvalue().encode()
