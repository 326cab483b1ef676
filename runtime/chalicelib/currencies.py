"""ISO 4217 currencies and their minor units (digits after the decimal point)."""

from __future__ import annotations

# Active ISO 4217 codes (list one, 2024 edition), funds and precious-metal codes excluded
# because card-not-present payments are never made in them.
_TWO_DIGIT = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR
    LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD
    PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN
    SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD XCG YER ZAR ZMW
    ZWG
    """.split()
)
_ZERO_DIGIT = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split())
_THREE_DIGIT = frozenset("BHD IQD JOD KWD LYD OMR TND".split())

MINOR_UNITS: dict[str, int] = {
    **{code: 2 for code in _TWO_DIGIT},
    **{code: 0 for code in _ZERO_DIGIT},
    **{code: 3 for code in _THREE_DIGIT},
}


def minor_units(currency: str) -> int | None:
    """Digits after the decimal point for ``currency``, or None if it is not an ISO 4217 code."""
    return MINOR_UNITS.get(currency)
