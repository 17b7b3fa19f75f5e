"""Kubernetes resource quantities ("500m", "2", "16Gi", "1e3") as exact numbers.

The scheduler compares a pod's requests with a node's allocatable resources; both are written as
Kubernetes quantities. Fractions keep "100m" + "900m" == "1" exact, as the API server's own
``resource.Quantity`` arithmetic is.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SUFFIXES = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


def parse_quantity(text: object, *, field: str = "quantity") -> Fraction:
    """The exact value of a quantity; an int or float is taken as is.

    Raises:
        ValueError: ``text`` is not a quantity; the message names ``field``.
    """
    if isinstance(text, bool):
        raise ValueError(f"{field}: {text!r} is not a quantity")
    if isinstance(text, int | float):
        return Fraction(text)
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise ValueError(f"{field}: {text!r} is not a quantity (e.g. 500m, 2, 16Gi)")
    number, exponent, suffix = match.groups()
    value = Fraction(number)
    if exponent:
        return value * Fraction(10) ** int(exponent[1:])
    return value * _SUFFIXES[suffix or ""]
