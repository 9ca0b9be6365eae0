"""The open data file's pure parts: its columns (a stable order: new columns only ever go at the
end) and how an award becomes a row. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.kernel.money import format_fen
from shared.web.display import beijing_date, policy_document, program_name

FILENAME = "grantline-awards-final.csv"
PAGE_ROWS = 1000  # rows read and written at a time: the memory a download holds
# A byte order mark first: Excel then reads the file as UTF-8 (without it, Chinese comes out
# garbled); csv readers and pandas take it with encoding "utf-8-sig".
BOM = "\ufeff"

COLUMNS = (
    "announcement_id",  # ann_…, as on the 公示 and in the transparency log
    "applicant_name",  # 申请单位
    "applicant_code",  # 统一社会信用代码
    "program_code",  # e.g. GT-EQUITY
    "program_name",  # 项目名称 (Chinese)
    "policy_document",  # 政策文号
    "subject",  # 事项
    "amount_yuan",  # 资助金额（元）, two decimals
    "year",  # 支持年度
    "finalized_date",  # 确定日期 (Beijing date)
    "log_index",  # the transparency log entry publishing it
    "finalized_log_index",  # the entry finalizing it
)

# A spreadsheet runs a cell that starts with one of these as a formula: text from applicants is
# kept as text by a leading apostrophe (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class FinalAward:
    announcement_id: str
    applicant_name: str
    applicant_code: str
    program: str
    subject: str
    amount_fen: int
    year: int
    finalized_at: datetime
    log_index: int | None
    finalized_log_index: int


def as_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_row(award: FinalAward) -> list[str]:
    """The award in COLUMNS order."""
    return [
        award.announcement_id,
        as_text(award.applicant_name),
        as_text(award.applicant_code),
        award.program,
        program_name(award.program),
        policy_document(award.program),
        as_text(award.subject),
        format_fen(award.amount_fen),
        str(award.year),
        beijing_date(award.finalized_at),
        "" if award.log_index is None else str(award.log_index),
        str(award.finalized_log_index),
    ]
