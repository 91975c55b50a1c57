"""Declarative ROS parameters shared by the package's nodes: one table of specs per node,
``ParameterDescriptor``s built from it, and one check used at start and on every change."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


class StartupError(RuntimeError):
    """A node cannot start (bad parameters, missing weights, no such device): says why."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default (its type is the parameter's type), description, constraints."""

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    value_range: tuple[float, float] | None = None
    read_only: bool = False


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """Why ``value`` is not acceptable for ``spec`` (type, choices, range); None when it is."""
    expected = type(spec.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return f"{spec.name} must be a {expected.__name__}, got {type(value).__name__} {value!r}"
    if spec.choices and value not in spec.choices:
        return f"{spec.name} must be one of {', '.join(spec.choices)}, got {value!r}"
    if spec.value_range is not None:
        low, high = spec.value_range
        if not low <= value <= high:  # also False for NaN
            return f"{spec.name} must be in [{low}, {high}], got {value!r}"
    return None


def descriptor(spec: ParamSpec) -> Any:
    """The ``rcl_interfaces/ParameterDescriptor`` for ``spec`` (ranges only for numbers)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    constraints = f"one of: {', '.join(spec.choices)}" if spec.choices else ""
    desc = ParameterDescriptor(description=spec.description, additional_constraints=constraints,
                               read_only=spec.read_only)
    if spec.value_range is not None:
        low, high = spec.value_range
        if isinstance(spec.default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(low),
                                                            to_value=float(high), step=0.0)]
        else:
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return desc


def declare_parameters(node: Any, specs: Iterable[ParamSpec],
                       validate: Callable[[str, Any], str | None]) -> dict[str, Any]:
    """Declare every parameter of ``specs`` on ``node`` with its descriptor and return the
    values, checked with ``validate``.

    Raises:
        StartupError: a value of the wrong type or failing ``validate`` (all reasons listed).
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values: dict[str, Any] = {}
    for spec in specs:
        try:
            node.declare_parameter(spec.name, spec.default, descriptor(spec))
        except InvalidParameterTypeException as error:
            kind = type(spec.default).__name__
            raise StartupError(f"parameter {spec.name} must be a {kind} "
                               f"(e.g. {spec.default!r}): {error}") from None
        except InvalidParameterValueException as error:
            raise StartupError(f"parameter {spec.name}: {error}") from None
        values[spec.name] = node.get_parameter(spec.name).value
    problems = [reason for name, value in values.items()
                if (reason := validate(name, value)) is not None]
    if problems:
        raise StartupError("invalid parameters: " + "; ".join(problems))
    return values
