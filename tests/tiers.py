"""The test tiers (issue 27): `slow` and the parameter cases the quick tier keeps.

`pytest -m "not slow"` is the quick tier; plain `pytest` (CI) runs everything. The quick tier keeps,
for every mechanism (each arch, multi-scale, conditioning, the mixture head, the codec), one cheap case
of each exactness test (causality, normalisation, fast == plain, codec round trip) so that it still
catches a mask off by one pixel; the other cases of those tests are marked slow here.
"""

import pytest

slow = pytest.mark.slow


def slow_except(values, *quick):
    """`values` for `pytest.mark.parametrize` with every value but those in `quick` marked slow.

    A tuple value is one case of several argnames (`pytest.param(*value)`). A `quick` value missing from
    `values` raises, so that a renamed case cannot silently move a whole test into the slow tier."""
    missing = [value for value in quick if value not in values]
    if missing:
        raise ValueError(f"slow_except: {missing!r} are not among the cases {values!r}")
    return [value if value in quick else pytest.param(*(value if isinstance(value, tuple) else (value,)), marks=slow)
            for value in values]
