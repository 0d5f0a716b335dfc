"""Exchange reference data: TSE sector classifications and market segments.

These are facts of the Tokyo Stock Exchange (like the holiday rules of the calendar),
not tunables, so they live in code.
"""

from __future__ import annotations

from typing import Final

import numpy as np

#: TSE 33-industry classification: (Sector33Code, Japanese name, Sector17Code).
SECTOR33: Final[tuple[tuple[str, str, str], ...]] = (
    ("0050", "水産・農林業", "1"),
    ("1050", "鉱業", "2"),
    ("2050", "建設業", "3"),
    ("3050", "食料品", "1"),
    ("3100", "繊維製品", "4"),
    ("3150", "パルプ・紙", "4"),
    ("3200", "化学", "4"),
    ("3250", "医薬品", "5"),
    ("3300", "石油・石炭製品", "2"),
    ("3350", "ゴム製品", "6"),
    ("3400", "ガラス・土石製品", "3"),
    ("3450", "鉄鋼", "7"),
    ("3500", "非鉄金属", "7"),
    ("3550", "金属製品", "3"),
    ("3600", "機械", "8"),
    ("3650", "電気機器", "9"),
    ("3700", "輸送用機器", "6"),
    ("3750", "精密機器", "9"),
    ("3800", "その他製品", "10"),
    ("4050", "電気・ガス業", "11"),
    ("5050", "陸運業", "12"),
    ("5100", "海運業", "12"),
    ("5150", "空運業", "12"),
    ("5200", "倉庫・運輸関連業", "12"),
    ("5250", "情報・通信業", "10"),
    ("6050", "卸売業", "13"),
    ("6100", "小売業", "14"),
    ("7050", "銀行業", "15"),
    ("7100", "証券、商品先物取引業", "16"),
    ("7150", "保険業", "16"),
    ("7200", "その他金融業", "16"),
    ("8050", "不動産業", "17"),
    ("9050", "サービス業", "10"),
)

#: English sector names, in the order of :data:`SECTOR33` (used for company names).
SECTOR33_ENGLISH: Final[tuple[str, ...]] = (
    "Fishery & Agriculture", "Mining", "Construction", "Foods", "Textiles", "Pulp & Paper",
    "Chemicals", "Pharmaceutical", "Oil & Coal", "Rubber", "Glass & Ceramics", "Steel",
    "Nonferrous Metals", "Metal Products", "Machinery", "Electric Appliances", "Transport Equipment",
    "Precision Instruments", "Other Products", "Electric Power & Gas", "Land Transport",
    "Marine Transport", "Air Transport", "Warehousing", "Information & Communication",
    "Wholesale", "Retail", "Banks", "Securities", "Insurance", "Other Financing", "Real Estate",
    "Services",
)

#: Relative number of listed companies per sector-33 (roughly the TSE's own mix).
SECTOR33_WEIGHTS: Final[np.ndarray] = np.array(
    [12, 6, 160, 125, 50, 25, 210, 70, 10, 20, 55, 45, 35, 90, 230, 240, 90, 50, 110, 25, 65,
     15, 5, 40, 530, 320, 350, 80, 40, 12, 35, 140, 560],
    dtype=np.float64,
)

#: TSE 17-industry names keyed by Sector17Code.
SECTOR17_NAMES: Final[dict[str, str]] = {
    "1": "食品",
    "2": "エネルギー資源",
    "3": "建設・資材",
    "4": "素材・化学",
    "5": "医薬品",
    "6": "自動車・輸送機",
    "7": "鉄鋼・非鉄",
    "8": "機械",
    "9": "電機・精密",
    "10": "情報通信・サービスその他",
    "11": "電力・ガス",
    "12": "運輸・物流",
    "13": "商社・卸売",
    "14": "小売",
    "15": "銀行",
    "16": "金融（除く銀行）",
    "17": "不動産",
}

#: Market segments since the April 2022 reorganisation: (MarketCode, name, investor-types Section).
MARKETS: Final[tuple[tuple[str, str, str], ...]] = (
    ("0111", "プライム", "TSEPrime"),
    ("0112", "スタンダード", "TSEStandard"),
    ("0113", "グロース", "TSEGrowth"),
)

#: Margin trading codes of the listed master: (MarginCode, name).
MARGIN_CODES: Final[tuple[tuple[str, str], ...]] = (
    ("1", "信用"),
    ("2", "貸借"),
    ("3", "その他"),
)

N_SECTORS: Final[int] = len(SECTOR33)
