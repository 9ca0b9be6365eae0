"""How Grantline shows things to people: the one formatting module every page uses.

Pages speak the way a Shanghai notice does: times in Beijing time to the minute
(`2026-11-30 17:28`), amounts in 万元 / 亿元 with the exact yuan figure beside or on hover,
programs by their Chinese name and the policy's 文号, statuses in Chinese with the English code
beside them. The JSON APIs do not use this module: they stay RFC 3339 UTC and decimal strings.

Amounts are never rounded for display: 1 fen is 0.000001万元, so the 万元 figure is exact with
trailing zeros dropped, and the yuan figure is there for whoever needs the last fen.
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

from shared.kernel.money import WAN_FEN, YI_FEN, Fen
from shared.policy.catalog import load_catalog

# China has kept UTC+8 without daylight saving since 1991: a fixed offset needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

# The 文号 of each seed document, from its own text (POLICY.md "The source documents"); the
# 2021 opinions of the municipal government's general office state none, so their title stands in.
DOCUMENTS: dict[str, str] = {
    "000": "沪科规〔2023〕10号",
    "001": "沪科合〔2022〕29号",
    "002": "沪府办《关于促进本市生物医药产业高质量发展的若干意见》",
    "003": "沪科提复〔2024〕45号",
    "004": "沪科建复〔2024〕40号",
}

STATUSES: dict[str, str] = {
    "received": "已受理",
    "assessed": "已审查",
    "approved": "已核准",
    "partially_approved": "部分核准",
    "rejected": "不予支持",
    "ineligible": "不符合条件",
    "pending_review": "待核定",
    "revoked": "已撤销",
    "live": "有效",  # an award neither held, rejected nor revoked (/v1/awards)
    "announced": "公示中",
    "published": "公示中",
    "withdrawn": "已撤回",
    "final": "已确定",
    "finalized": "已确定",
    "open": "待处理",
    "upheld": "异议成立",
    "dismissed": "异议不成立",
    "auto": "自动核定",
    "required": "人工核定",
    "created": "已创建",
    "ready": "待支付",
    "awaiting_payee": "待补收款账户",
    "sent": "已发送银行",
    "settled": "已到账",
    "failed": "支付失败",
    "returned": "已退回",
    "parked": "已挂起",
    "delivered": "已送达",
    "pending": "待处理",
}


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:  # stored naive means UTC everywhere in Grantline
        value = value.replace(tzinfo=UTC)
    return value


def beijing_time(value: datetime | str | None) -> str:
    """`2026-11-30 17:28` (Beijing time, to the minute); "" for none."""
    if value is None or value == "":
        return ""
    return _as_datetime(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def beijing_date(value: datetime | date | str | None) -> str:
    """`2026-11-30` as the calendar reads in Beijing."""
    if value is None or value == "":
        return ""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return _as_datetime(value).astimezone(BEIJING).strftime("%Y-%m-%d")


def _exact(fen: int, unit_fen: int) -> str:
    whole, rest = divmod(fen, unit_fen)
    if not rest:
        return str(whole)
    digits = len(str(unit_fen)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def wan_yuan(amount_fen: Fen) -> str:
    """`3000万元`, `1.5亿元`, `123.456789万元`, `5,000.00元`: exact, never rounded."""
    sign, fen = ("-", -amount_fen) if amount_fen < 0 else ("", amount_fen)
    if fen >= YI_FEN:
        return f"{sign}{_exact(fen, YI_FEN)}亿元"
    if fen >= WAN_FEN:
        return f"{sign}{_exact(fen, WAN_FEN)}万元"
    return f"{sign}{yuan(fen)}"


def yuan(amount_fen: Fen) -> str:
    """`30,000,000.00元`: the exact figure, grouped."""
    sign, fen = ("-", -amount_fen) if amount_fen < 0 else ("", amount_fen)
    whole, cents = divmod(fen, 100)
    return f"{sign}{whole:,}.{cents:02d}元"


def money_html(amount_fen: Fen) -> str:
    """The 万元 figure with the exact yuan on hover and for screen readers (escaped HTML)."""
    exact = html.escape(yuan(amount_fen))
    return f'<span class="amount" title="{exact}" aria-label="{exact}">{html.escape(wan_yuan(amount_fen))}</span>'


@lru_cache(maxsize=1)
def _programs() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for program in load_catalog().programs.values():
        out[program.code] = (program.name_zh, DOCUMENTS.get(program.source[:3], ""))
    return out


def program_name(code: str) -> str:
    """`基因治疗产品上市资金支持`; the code itself for a program the shipped catalog does not know."""
    return _programs().get(code, (code, ""))[0]


def policy_document(code: str) -> str:
    """The 文号 of the policy the program comes from (`沪科规〔2023〕10号`), or ""."""
    return _programs().get(code, ("", ""))[1]


def program_label(code: str) -> str:
    """`基因治疗产品上市资金支持（沪科规〔2023〕10号）`, as a notice names a program."""
    name, document = _programs().get(code, (code, ""))
    return f"{name}（{document}）" if document else name


def status_label(status: str) -> str:
    """`已核准 approved`: Chinese first, the API's code beside it."""
    zh = STATUSES.get(status)
    return f"{zh} {status}" if zh else status
