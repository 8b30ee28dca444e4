"""UCUM unit conversion for the quantities our rules compare (lab concentrations, temperature, percent)."""

from __future__ import annotations

# Factor to the base unit of each dimension: mass concentration in mg/L.
_MASS_CONCENTRATION = {
    "mg/L": 1.0,
    "mg/dL": 10.0,
    "g/L": 1000.0,
    "g/dL": 10000.0,
    "ug/mL": 1.0,
    "ug/L": 0.001,
    "ng/mL": 0.001,
    "ng/dL": 0.00001,
}
_PLAIN = {"%": 1.0, "{score}": 1.0, "1": 1.0, "mm": 1.0}


def convert(value: float, unit: str | None, target: str) -> float | None:
    """Convert `value` from `unit` to `target`; None when the units are not comparable or `unit` is
    missing (an unlabelled number could be in any unit)."""
    if unit is None:
        return None
    if unit == target:
        return value
    if unit in _MASS_CONCENTRATION and target in _MASS_CONCENTRATION:
        return value * _MASS_CONCENTRATION[unit] / _MASS_CONCENTRATION[target]
    if {unit, target} == {"Cel", "[degF]"}:
        return (value - 32) * 5 / 9 if unit == "[degF]" else value * 9 / 5 + 32
    if unit in _PLAIN and target in _PLAIN:
        return value
    return None
