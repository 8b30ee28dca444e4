"""Compile-time checks, custom operators, engine isolation and code-generation safety."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.logic import Engine, LogicError, LogicRuntimeError, Node, Operation, compile


def compile_error(rule: Any, **engine_options: Any) -> LogicError:
    with pytest.raises(LogicError) as info:
        Engine(**engine_options).compile(rule)
    assert not isinstance(info.value, LogicRuntimeError)
    return info.value


# ---------------------------------------------------------------- compile-time errors and paths


def test_unknown_operator_nested_reports_path() -> None:
    error = compile_error({"and": [True, {"<=": [{"foo": [1]}, 2]}]})
    assert error.path == "$.and[1].<=[0].foo"
    assert error.reason == "unknown operator 'foo'"
    assert str(error) == "$.and[1].<=[0].foo: unknown operator 'foo'"


def test_unknown_operator_in_untaken_branch() -> None:
    error = compile_error({"if": [True, 1, {"bogus": []}]})
    assert error.path == "$.if[2].bogus"


def test_odd_operator_names_are_quoted_in_paths() -> None:
    assert compile_error({"a.b": 1}).path == '$["a.b"]'


def test_static_arity() -> None:
    error = compile_error({"and": [{"%": [1]}]})
    assert error.path == "$.and[0].%"
    assert error.type == "Invalid Arguments"
    assert compile_error({"in": ["a"]}).type == "Invalid Arguments"
    assert compile_error({"if": "apple"}).type == "Invalid Arguments"


def test_depth_limit_checked_before_recursing() -> None:
    rule: Any = True
    for _ in range(100_000):
        rule = {"!": [rule]}
    error = compile_error(rule)
    assert "max_depth=64" in error.reason
    assert Engine(max_depth=10).compile(_nest(4))({}) is True
    assert "max_depth=10" in compile_error(_nest(10), max_depth=10).reason


def _nest(levels: int) -> Any:
    rule: Any = True
    for _ in range(levels):
        rule = {"!!": [rule]}
    return rule


def test_deep_literal_data_is_limited_too() -> None:
    value: Any = 1
    for _ in range(1000):
        value = [value]
    assert "max_depth" in compile_error({"preserve": value}).reason
    assert "max_depth" in compile_error(value).reason


def test_node_limit() -> None:
    assert "max_nodes=100" in compile_error({"+": list(range(200))}, max_nodes=100).reason


@pytest.mark.parametrize("bad", [(1, 2), {1, 2}, b"x", object(), 1j])
def test_non_json_constants_rejected(bad: Any) -> None:
    error = compile_error({"==": [{"var": "x"}, bad]})
    assert error.path == "$.==[1]"
    assert "non-JSON" in error.reason


def test_str_subclass_constant_rejected() -> None:
    class Sneaky(str):
        def __repr__(self) -> str:
            return "__import__('os').getpid()"

    assert "non-JSON" in compile_error({"cat": [Sneaky("x")]}).reason


def test_multi_key_object_rejected() -> None:
    assert "exactly one key" in compile_error({"==": [1, 1], "!=": [1, 2]}).reason


def test_runtime_errors_carry_type() -> None:
    with pytest.raises(LogicRuntimeError) as info:
        compile({"/": [1, {"var": "x"}]})({"x": 0})
    assert info.value.type == "NaN"
    with pytest.raises(LogicRuntimeError) as info:
        compile({"throw": {"var": "e"}})({"e": {"type": "Custom", "detail": 1}})
    assert info.value.type == "Custom"
    assert info.value.payload == {"type": "Custom", "detail": 1}
    assert info.value.path == "$.throw"


# ---------------------------------------------------------------- custom operations


def test_eager_operation() -> None:
    engine = Engine({"double": Operation(func=lambda x: x * 2, min_args=1, max_args=1)})
    assert engine.compile({"double": {"var": "n"}})({"n": 21}) == 42
    assert engine.compile({"double": [{"+": [1, 2]}]})({}) == 6
    assert compile_error_from(engine, {"double": [1, 2]}).type == "Invalid Arguments"


def compile_error_from(engine: Engine, rule: Any) -> LogicError:
    with pytest.raises(LogicError) as info:
        engine.compile(rule)
    return info.value


def test_builder_operation_is_lazy_and_checks_constants() -> None:
    calls: list[Any] = []

    def build_first_truthy(args: list[Node], path: str) -> Any:
        for node in args:
            if node.is_constant and not isinstance(node.value, int | bool | type(None)):
                raise LogicError("only numbers, booleans or rules", node.path)
        getters = [node.evaluate for node in args]

        def run(data: Any) -> Any:
            for get in getters:
                value = get(data)
                calls.append(value)
                if value:
                    return value
            return None

        return run

    engine = Engine({"first": Operation(build=build_first_truthy, min_args=1)})
    rule = {"first": [0, {"var": "a"}, {"throw": "not lazy"}]}
    assert engine.compile(rule)({"a": 7}) == 7
    assert calls == [0, 7]
    assert compile_error_from(engine, {"first": [1, "x"]}).path == "$.first[1]"


def test_builder_sees_raw_rules() -> None:
    seen: list[Any] = []

    def build(args: list[Node], path: str) -> Any:
        seen.extend((node.rule, node.is_constant) for node in args)
        return lambda data: path

    engine = Engine({"where": Operation(build=build)})
    assert engine.compile({"and": [{"where": [{"var": "x"}, 3]}]})({}) == "$.and[0].where"
    assert seen == [({"var": "x"}, False), (3, True)]


def test_single_argument_shorthand_for_custom_operations() -> None:
    engine = Engine({"neg": Operation(func=lambda x: -x)})
    assert engine.compile({"neg": 5})({}) == -5


# ---------------------------------------------------------------- isolation and overrides


def test_extend_does_not_touch_other_engines_or_default() -> None:
    base = Engine()
    extended = base.extend({"shout": Operation(func=lambda s: s.upper())})
    assert extended.compile({"shout": "hi"})({}) == "HI"
    for engine_compile in (base.compile, compile, Engine().compile):
        with pytest.raises(LogicError):
            engine_compile({"shout": "hi"})
    assert "shout" not in base.operations
    with pytest.raises(TypeError):
        base.operations["shout"] = Operation(func=str)  # type: ignore[index]


def test_compile_with_operations_is_per_call() -> None:
    assert compile({"twice": 2}, operations={"twice": Operation(func=lambda x: 2 * x)})({}) == 4
    with pytest.raises(LogicError):
        compile({"twice": 2})


def _null_propagating(compare: Any) -> Operation:
    def build(args: list[Node], path: str) -> Any:
        left, right = args[0].evaluate, args[1].evaluate

        def run(data: Any) -> Any:
            a, b = left(data), right(data)
            return None if a is None or b is None else compare(a, b)

        return run

    return Operation(build=build, min_args=2, max_args=2)


def test_override_builtin_in_one_engine_only() -> None:
    three_valued = Engine({"<=": _null_propagating(lambda a, b: a <= b)})
    rule = {"<=": [{"var": "months"}, 120]}
    assert three_valued.compile(rule)({}) is None
    assert three_valued.compile(rule)({"months": 14}) is True
    assert compile(rule)({}) is True  # the default stays JS-faithful: null counts as 0
    assert Engine().compile(rule)({}) is True


# ---------------------------------------------------------------- code generation safety


NASTY = [
    "'); import os; ('",
    '"); __import__("os").system("echo pwned"); ("',
    "__import__('os').getpid()",
    "back\\slash\\",
    "new\nline\r\n\t",
    "quotes ' \" ''' \"\"\"",
    "\x00\u2028\U0001f600",
    "{d}",
    "d.get('x')",
]


@pytest.mark.parametrize("text", NASTY)
def test_strings_are_literals(text: str) -> None:
    assert compile(text)({}) == text
    assert compile({"cat": [text]})({}) == text
    assert compile({"==": [{"var": "s"}, text]})({"s": text}) is True
    assert compile({"in": [{"var": "s"}, [text, "other"]]})({"s": text}) is True
    assert compile({"var": text})({text: 1}) == (1 if "." not in text else None)
    assert compile({"val": text})({text: 2}) == 2
    assert compile({"if": [{"var": "x"}, text, [text]]})({"x": 0}) == [text]


def test_generated_source_only_holds_reprs_and_names() -> None:
    rule = {"and": [{"==": [{"var": "a"}, "x'); import os; ('"]}, {"in": [{"var": "b"}, ["p", None]]}]}
    f = compile(rule)
    assert "import os" not in f.source.replace(repr("x'); import os; ('"), "")
    assert f({"a": "x'); import os; ('", "b": None}) is True


def test_no_attribute_access_on_data() -> None:
    class Secret:
        password = "hunter2"

    f = compile({"var": "obj.password"})
    assert f({"obj": Secret()}) is None
    assert compile({"val": ["obj", "__class__"]})({"obj": {}}) is None


def test_strict_equality_distinguishes_bool_from_int() -> None:
    assert compile({"===": [1, True]})({}) is False
    assert compile({"===": [{"var": "x"}, 1]})({"x": True}) is False
    assert compile({"==": [{"var": "x"}, 1]})({"x": True}) is True
    assert compile({"in": [1, [True]]})({}) is False


def test_fast_and_slow_paths_agree_on_non_dict_data() -> None:
    f = compile({"and": [{">=": [{"var": "0"}, 6]}, {"in": [{"var": "1"}, ["a", "b"]]}]})
    assert f([7, "a"]) is True
    assert f({"0": 7, "1": "a"}) is True
    assert f({"0": "7", "1": "a"}) is True
    assert f({"0": 5, "1": "a"}) is False


def test_scope_up_inside_nested_iterators() -> None:
    rule = {"map": [{"var": "xs"}, {"+": [{"val": []}, {"val": [[1], "index"]}, {"val": [[2], "bonus"]}]}]}
    assert compile(rule)({"xs": [10, 20], "bonus": 100}) == [110, 121]
