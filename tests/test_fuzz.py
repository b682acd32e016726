"""The front door under attack: formulas cannot run code, and random formulas, CSV files, counts and
priors either pass or fail with a one-line PoolwiseError. Nothing here samples.

The attack list runs every hostile formula through ``parse_formula``, ``templates``, ``check``,
``fit`` (sampler replaced by a tripwire) and the ``templates``/``check`` commands, and checks that
the file it targets in ``tmp_path`` is untouched. ``test_control_unchecked_template_runs_code``
shows the same kind of text does run once it reaches Bambi unchecked, so the side-effect checks
can fail. The Hypothesis tests report their case counts with ``--hypothesis-show-statistics``.
"""

import csv
import io
import re
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import poolwise as pw
from poolwise.cli import app
from poolwise.data import prepare_data
from poolwise.formulas import ALLOWED_CALLS
from poolwise.pooling import pooling as find_pooling
from poolwise.priors import check_terms, parse_prior, prior_strings

runner = CliRunner()
DATA = pd.DataFrame(
    {
        "k": [1, 2, 3, 4],
        "n": [5, 5, 6, 6],
        "x": [0, 1, 0, 1],
        "z": [0.5, 1.5, 2.5, 0.1],
        "g": ["a", "a", "b", "b"],
        "t": ["u", "v", "u", "v"],
    }
)


def fuzz(examples: int) -> settings:
    """Hypothesis settings: ``examples`` cases, no per-case deadline (the first case imports Bambi)."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def fitting_module():
    """The module that talks to Bambi, found through the public ``pw.fit`` whatever its file name."""
    return sys.modules[pw.fit.__module__]


def assert_one_line(error: Exception) -> str:
    """poolwise's own error type with a message of exactly one non-empty line."""
    assert type(error) is pw.PoolwiseError, f"{type(error).__name__}: {error}"
    message = str(error)
    assert message.strip() and len(message.splitlines()) == 1, repr(message)
    return message


# ---------------------------------------------------------------------------------------------
# 1. Formulas evaluate nothing but transforms
# ---------------------------------------------------------------------------------------------

CALLS = "formula calls {}(), which poolwise does not allow; use only: "
UNREADABLE = "cannot read formula "
NOT_PLAIN = "formula names '{}', which is not a plain column name"
# name -> (formula, how it must be refused). {victim} is a file and {keep} a folder that must
# survive, {new} a path that must not appear.
ATTACKS = {
    "os.remove": ('p(k, n) ~ x + os.remove("{victim}") + (1|g)', CALLS.format("os.remove")),
    "os.system": ('p(k, n) ~ x + os.system("touch {new}") + (1|g)', CALLS.format("os.system")),
    "os.mkdir": ('p(k, n) ~ x + os.mkdir("{new}") + (1|g)', CALLS.format("os.mkdir")),
    "shutil.rmtree": ('p(k, n) ~ x + shutil.rmtree("{keep}") + (1|g)', CALLS.format("shutil.rmtree")),
    "subprocess.run list": ('p(k, n) ~ x + subprocess.run(["touch", "{new}"]) + (1|g)', CALLS.format("subprocess.run")),
    "subprocess.call shell": (
        'p(k, n) ~ x + subprocess.call("touch {new}", shell=True) + (1|g)',
        CALLS.format("subprocess.call"),
    ),
    "open": ('p(k, n) ~ x + open("{new}", "w") + (1|g)', CALLS.format("open")),
    "eval": ("p(k, n) ~ x + eval(\"__import__('os').remove('{victim}')\") + (1|g)", CALLS.format("eval")),
    "eval plain": ('p(k, n) ~ x + eval("1") + (1|g)', CALLS.format("eval")),
    "exec": ('p(k, n) ~ x + exec("import os") + (1|g)', CALLS.format("exec")),
    "compile": ('p(k, n) ~ x + compile("1", "f", "eval") + (1|g)', CALLS.format("compile")),
    "__import__": ('p(k, n) ~ x + __import__("os").remove("{victim}") + (1|g)', UNREADABLE),
    "builtins.open": ('p(k, n) ~ x + builtins.open("{new}", "w") + (1|g)', CALLS.format("builtins.open")),
    "getattr": ('p(k, n) ~ x + getattr(os, "remove")("{victim}") + (1|g)', CALLS.format("getattr")),
    "setattr": ('p(k, n) ~ x + setattr(np, "log", print) + (1|g)', CALLS.format("setattr")),
    "numpy attribute chain": ('p(k, n) ~ x + np.lib.npyio.save("{new}", x) + (1|g)', CALLS.format("np.lib.npyio.save")),
    "pandas method chain": ('p(k, n) ~ x + pd.DataFrame(x).to_csv("{new}") + (1|g)', CALLS.format("pd.DataFrame")),
    "dunder chain call": (
        "p(k, n) ~ x + x.__class__.__base__.__subclasses__() + (1|g)",
        CALLS.format("x.__class__.__base__.__subclasses__"),
    ),
    "dunder name": ("p(k, n) ~ x + x.__class__ + (1|g)", "column 'x.__class__' is not in the data"),
    "print": ("p(k, n) ~ x + print(x) + (1|g)", CALLS.format("print")),
    "globals subscript": ('p(k, n) ~ x + globals()["os"] + (1|g)', CALLS.format("globals")),
    "breakpoint": ("p(k, n) ~ x + breakpoint() + (1|g)", CALLS.format("breakpoint")),
    "sys.exit": ("p(k, n) ~ x + sys.exit(3) + (1|g)", CALLS.format("sys.exit")),
    "lambda": ('p(k, n) ~ x + (lambda: os.remove("{victim}")) + (1|g)', CALLS.format("os.remove")),
    "list comprehension": ("p(k, n) ~ x + [os.remove(f) for f in x] + (1|g)", CALLS.format("os.remove")),
    "generator": ("p(k, n) ~ x + (os.remove(f) for f in x) + (1|g)", CALLS.format("os.remove")),
    "dict literal": ('p(k, n) ~ x + {{"a": os.remove("{victim}")}} + (1|g)', CALLS.format("os.remove")),
    "braces": ('p(k, n) ~ x + {{os.remove("{victim}")}} + (1|g)', CALLS.format("os.remove")),
    "brackets": ('p(k, n) ~ x + [os.remove("{victim}")] + (1|g)', CALLS.format("os.remove")),
    "I()": ('p(k, n) ~ x + I(os.remove("{victim}")) + (1|g)', CALLS.format("os.remove")),
    "operator inside I()": ('p(k, n) ~ I(x + os.remove("{victim}")) + (1|g)', CALLS.format("os.remove")),
    "quoted name": ('p(k, n) ~ x + `os.remove("{victim}")` + (1|g)', NOT_PLAIN.format('os.remove("{victim}")')),
    "quoted module": ('p(k, n) ~ x + `os`.remove("{victim}") + (1|g)', CALLS.format("remove")),
    "quoted name in C()": (
        'p(k, n) ~ x + C(`os.remove("{victim}")`) + (1|g)',
        NOT_PLAIN.format('os.remove("{victim}")'),
    ),
    "quoted name in p()": ('p(`os.remove("{victim}")`, n) ~ x + (1|g)', NOT_PLAIN.format('os.remove("{victim}")')),
    "quoted group": ('p(k, n) ~ x + (1|`os.mkdir("{new}")`)', NOT_PLAIN.format('os.mkdir("{new}")')),
    "C() levels": ('p(k, n) ~ x + C(g, levels=open("{new}", "w")) + (1|g)', CALLS.format("open")),
    "C() argument": ('p(k, n) ~ x + C(os.remove("{victim}")) + (1|g)', CALLS.format("os.remove")),
    "C() encoding call": ('p(k, n) ~ x + C(g, Treatment(os.remove("{victim}"))) + (1|g)', CALLS.format("Treatment")),
    "nested allowed calls": ('p(k, n) ~ x + scale(log(os.remove("{victim}"))) + (1|g)', CALLS.format("os.remove")),
    "keyword value": ('p(k, n) ~ x + scale(x, ddof=os.remove("{victim}")) + (1|g)', CALLS.format("os.remove")),
    "call on a call": ('p(k, n) ~ x + exp(x)(os.remove("{victim}")) + (1|g)', CALLS.format("os.remove")),
    "p() argument": ('p(os.remove("{victim}"), n) ~ x + (1|g)', CALLS.format("os.remove")),
    "p() keyword": ('p(k, n, trials=open("{new}", "w")) ~ x + (1|g)', CALLS.format("open")),
    "prop() argument": ('prop(k, os.remove("{victim}")) ~ x + (1|g)', CALLS.format("os.remove")),
    "cbind() tail": ('cbind(k, n - k) ~ x + os.remove("{victim}") + (1|g)', CALLS.format("os.remove")),
    "cbind() argument": (
        'cbind(os.remove("{victim}"), n - k) ~ x + (1|g)',
        "cbind() is read only as cbind(successes, trials - successes)",
    ),
    "group factor": ('p(k, n) ~ x + (1|os.remove("{victim}"))', CALLS.format("os.remove")),
    "group term": ('p(k, n) ~ x + (os.remove("{victim}")|g)', CALLS.format("os.remove")),
    "removed term": ('p(k, n) ~ x - os.remove("{victim}") + (1|g)', CALLS.format("os.remove")),
    "quoted callee": ('p(k, n) ~ x + `os.remove`("{victim}") + (1|g)', CALLS.format("`os.remove`")),
    "interaction": ('p(k, n) ~ x:os.remove("{victim}") + (1|g)', CALLS.format("os.remove")),
    "trailing text": ('p(k, n) ~ x + (1|g) os.remove("{victim}")', CALLS.format("os.remove")),
    "unclosed string": (
        'p(k, n) ~ C(g, levels="a\\") + os.remove("{victim}") + C(g, levels="b") + (1|g)',
        CALLS.format("os.remove"),
    ),
    "fullwidth os": ('p(k, n) ~ x + ｏｓ.remove("{victim}") + (1|g)', CALLS.format("ｏｓ.remove")),
    "newline": ('p(k, n) ~ x\n+ os.remove("{victim}") + (1|g)', CALLS.format("os.remove")),
    "null byte": ('p(k, n) ~ x + os.remove("{victim}")\x00 + (1|g)', UNREADABLE),
    "semicolon": ("p(k, n) ~ x + (1|g); import os", UNREADABLE),
    "walrus": ('p(k, n) ~ x + (f := os.remove("{victim}")) + (1|g)', CALLS.format("os.remove")),
    "f-string": ("p(k, n) ~ x + f\"{{os.remove('{victim}')}}\" + (1|g)", UNREADABLE),
}


@pytest.fixture
def targets(tmp_path):
    """A file and a folder an attack would delete, the path it would create, and a check that all
    of tmp_path is as it was."""
    victim, keep = tmp_path / "victim.txt", tmp_path / "keep"
    victim.write_text("precious")
    keep.mkdir()
    (keep / "inside.txt").write_text("also precious")
    paths = {"victim": victim, "keep": keep, "new": tmp_path / "created"}

    def untouched() -> None:
        assert victim.read_text() == "precious" and (keep / "inside.txt").read_text() == "also precious"
        assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == sorted(
            ["keep", "keep/inside.txt", "victim.txt", *extra]
        ), "an attack changed tmp_path"

    extra: list[str] = []
    return paths, untouched, extra


def attack_data(formula: str) -> pd.DataFrame:
    """DATA plus a column for every backquoted name, so that only the formula check can refuse it."""
    data = DATA.copy()
    for name in re.findall(r"`([^`]*)`", formula):
        data[name] = data["x"]
    return data


def tripwire(*args, **kwargs):
    raise AssertionError("the sampler was reached: the formula got past every check")


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_everywhere_and_runs_nothing(name, targets, monkeypatch):
    paths, untouched, _ = targets
    template, expected = ATTACKS[name]
    formula = template.format(**paths)
    expected = expected.format(**paths)
    data = attack_data(formula)
    monkeypatch.setattr(fitting_module(), "sample", tripwire)
    monkeypatch.setattr(sys.modules[pw.compare.__module__], "sample", tripwire)
    entry_points = {
        "parse_formula": lambda: pw.parse_formula(formula, data),
        "check": lambda: pw.check(formula, data),
        "fit": lambda: pw.fit(formula, data, pooling="complete", draws=1, tune=0, chains=1, allow_unidentified=True),
        "compare": lambda: pw.compare(formula, data, draws=1, tune=0, chains=1, allow_unidentified=True),
    }
    if expected != ATTACKS["dunder name"][1]:  # a name that is not a call is only refused against data
        entry_points["templates"] = lambda: pw.templates(formula)
    for where, call in entry_points.items():
        with pytest.raises(pw.PoolwiseError) as err:
            call()
        message = assert_one_line(err.value)
        assert message.startswith(expected), f"{where}: {message}"
        untouched()


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_through_the_cli(name, targets):
    paths, untouched, extra = targets
    formula = ATTACKS[name][0].format(**paths)
    csv_path = paths["victim"].parent / "data.csv"
    attack_data(formula).to_csv(csv_path, index=False)
    extra.append("data.csv")
    commands = [["check", str(csv_path), formula]]
    if ATTACKS[name][1] != ATTACKS["dunder name"][1]:
        commands.append(["templates", formula])
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code == 2 and result.stdout == "", (command[0], result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (command[0], result.stderr)
        untouched()


def test_control_unchecked_template_runs_code(tmp_path):
    """Without parse_formula's checks, a name that reaches Bambi's formula does run: the attack
    tests above would see its side effect. (The spec is forged; poolwise never builds it.)"""
    created = tmp_path / "created.npy"
    data = DATA.assign(**{f'np.save("{created}", x)': DATA["x"]})
    spec = replace(pw.parse_formula("p(k, n) ~ x + (1|g)", data), common=(f'np.save("{created}", x)',))
    with warnings.catch_warnings(), pytest.raises(Exception):
        warnings.simplefilter("ignore")
        fitting_module().build_model(spec, data, "complete", {})
    assert created.is_file()


def test_allowed_calls_are_not_shadowed_where_bambi_looks_first():
    """Bambi looks names up in the calling frame (build_model's locals, then its module's globals)
    before poolwise's namespace: none of those may be an allowed call's name."""
    module = fitting_module()
    assert not ALLOWED_CALLS & set(vars(module))
    assert not ALLOWED_CALLS & set(module.build_model.__code__.co_varnames)


def test_templates_carry_exactly_what_was_checked():
    """Regression (issue 10 fuzzing): names and terms the templates write back as text must read
    back as the same thing; before, `os.remove("f")` became the call os.remove("f") in Bambi's
    formula, I((x + 1) * z) became I(x + 1 * z), and text after an unplaceable token was dropped."""
    cases = {
        "p(k, n) ~ I((x + 1) * z) + (1|g)": "the term 'I(x + 1 * z)' does not read back as written",
        "p(k, n) ~ x + (I((x + 1) * z)|g)": "the term 'I(x + 1 * z)' does not read back as written",
        "p(k, n) ~ x % z + (1|g)": "cannot read formula 'p(k, n) ~ x % z + (1|g)' from '%' on (a missing '+'?)",
        "p(k, n) ~ x z + (1|g)": "cannot read formula 'p(k, n) ~ x z + (1|g)' from 'z' on (a missing '+'?)",
        "p(k, n) ~ x + (1|`123`)": "formula names '123', which is not a plain column name",
        "p(k, n) ~ x + `True` + (1|g)": "formula names 'True', which is not a plain column name",
        "p(`a b`, n) ~ x + (1|g)": "formula names 'a b', which is not a plain column name",
        "2 ~ x + (1|g)": "formula names 2, which is not a plain column name",  # was a TypeError
    }
    for formula, start in cases.items():
        with pytest.raises(pw.PoolwiseError) as err:
            pw.templates(formula)
        assert assert_one_line(err.value).startswith(start), formula
    fine = pw.templates('p(k, n) ~ `x` + x.1 + I((x + 1)) + {x / 2} + log(x + 1) + C(t, levels="v") + (`x`|g)')
    assert fine["partial"] == 'p(k, n) ~ x + x.1 + I(x + 1) + I(x / 2) + log(x + 1) + C(t, levels="v") + (1 + x|g)'


def test_column_listing_stays_on_one_line():
    data = pd.DataFrame({"k\nx": [1], "n": [2], "g\r": ["a"]})
    with pytest.raises(pw.PoolwiseError) as err:
        pw.parse_formula("p(k, n) ~ (1|g)", data)
    assert (
        assert_one_line(err.value)
        == "column 'g' is not in the data; the columns are: k\\nx, n, g\\r. Fix the formula or the data"
    )


# ---------------------------------------------------------------------------------------------
# 2. Hypothesis: formulas
# ---------------------------------------------------------------------------------------------

COLUMNS = ["k", "n", "x", "z", "g", "t"]
NAMES = COLUMNS + ["w", "größe", "x.1", "os", "np", "Treatment", "True", "_x", "1x"]
BAD_CALLS = [
    "os.remove",
    "open",
    "eval",
    "exec",
    "getattr",
    "np.log",
    "__import__",
    "x.__class__",
    "print",
    "Treatment",
    "ｏｓ.remove",
]
TOKENS = NAMES + [
    "~",
    "+",
    "-",
    "*",
    "/",
    ":",
    "|",
    "**",
    "%",
    "//",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    "=",
    "==",
    "!",
    "0",
    "1",
    "-1",
    "2.5",
    "1e3",
    '"a"',
    "'b'",
    "`k`",
    "`a b`",
    '`os.remove("f")`',
    "`",
    '"',
    "'",
    ".",
    ";",
    "p(k, n)",
    "cbind(k, n - k)",
    "prop(",
    "C(",
    "log(",
    "scale(",
    "os.remove(",
    "open(",
    "lambda",
    "for",
    "||",
    "factor(",
    "I(",
    "^",
    "offset(log(",
    "(1|g/t)",
    "(x||g)",
    "[",
    "k[1]",
    "\n",
    "\t",
    "\r",
    "\x00",
    "é",
    "\u2028",
    "\ufeff",
    "🙂",
    "ｘ",
]
soup = st.lists(st.tuples(st.sampled_from(TOKENS) | st.text(max_size=3), st.sampled_from(["", " "])), max_size=12).map(
    lambda parts: "".join(token + sep for token, sep in parts)
)
# Random token sequences, most with one '~' between two of them.
formula_soup = st.one_of(soup, st.tuples(soup, soup).map(" ~ ".join), st.tuples(soup, soup).map(" ~ ".join))


@st.composite
def grammar_formulas(draw) -> tuple[str, bool]:
    """A formula built from terms, calls (allowed and not), operators and one group part; returns
    it and whether it calls something outside ALLOWED_CALLS."""
    bad = []

    def leaf():
        if draw(st.integers(0, 2)):
            return draw(st.sampled_from(COLUMNS))
        return draw(
            st.sampled_from(NAMES)
            | st.sampled_from(["1", "0", "2.5", '"u"', "`x`", "`a b`", "`os.getpid()`"])
            | st.from_regex(r"[a-zA-Z][a-zA-Z0-9_.]{0,5}", fullmatch=True)
        )

    def expr(depth: int) -> str:
        kind = draw(
            st.sampled_from(["leaf", "leaf", "call", "op", "paren", "brace", "interaction"] if depth < 3 else ["leaf"])
        )
        if kind == "leaf":
            return leaf()
        if kind == "call":
            callee = draw(st.sampled_from(sorted(ALLOWED_CALLS) + BAD_CALLS))
            bad.append(callee not in ALLOWED_CALLS)
            args = [expr(depth + 1) for _ in range(draw(st.integers(0, 2)))]
            if draw(st.booleans()):
                args.append(f"{draw(st.sampled_from(['levels', 'ddof', 'trials', 'x']))}={expr(depth + 1)}")
            return f"{callee}({', '.join(args)})"
        if kind == "op":
            return f"{expr(depth + 1)} {draw(st.sampled_from(['+', '-', '*', '/', '**', '==']))} {expr(depth + 1)}"
        if kind == "interaction":
            return f"{expr(depth + 1)}:{expr(depth + 1)}"
        return f"({expr(depth + 1)})" if kind == "paren" else f"{{{expr(depth + 1)}}}"

    response = draw(
        st.sampled_from(["p(k, n)", "p(k, n)", "prop(k, n)", "cbind(k, n - k)", "k", "cbind(k, n)", "p(k)", None])
    )
    response = expr(1) if response is None else response
    terms = [expr(1) for _ in range(draw(st.integers(0, 3)))]
    for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) else 0):
        group = draw(st.sampled_from(["g", "g", "t", "x", "g/t", "g:t"])) if draw(st.integers(0, 3)) else leaf()
        bar = draw(st.sampled_from(["|", "|", "||"]))
        terms.append(
            f"({draw(st.sampled_from(['1', '0', 'x', '1 + x']))} + {expr(2)}{bar}{group})"
            if draw(st.booleans())
            else f"({draw(st.sampled_from(['1', 'x', '1 + x', '0 + z', 'factor(t)', 'I(x^2)']))}{bar}{group})"
        )
    return f"{response} ~ {' + '.join(terms) or '1'}", any(bad)


def kind(message: str) -> str:
    """A message without what it quotes, for Hypothesis' event statistics."""
    return " ".join(re.sub(r"'[^']*'|\"[^\"]*\"|\S*[\d(`/\\]\S*", "_", message).split()[:4])


def check_formula(formula: str) -> None:
    """The property: refused with one line, or a spec whose templates read back through the same
    checks (what reaches Bambi is exactly what was checked)."""
    try:
        spec = pw.parse_formula(formula, DATA)
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions escape
        event(f"refused: {kind(assert_one_line(err))}")
        return
    assert set(spec.variables) <= set(COLUMNS) | {"Treatment", "Sum"}
    try:
        templates = pw.templates(spec)
    except Exception as err:  # noqa: BLE001
        assert "has no group term" in assert_one_line(err)
        event("parsed, no group term")
        return
    event("parsed, templates read back")
    # A nested factor a/b is fitted as the column a_b, which the data stage adds.
    nested = DATA.assign(
        **{
            factor.name: DATA[list(factor.parts)].astype(str).agg(":".join, axis=1)
            for factor in spec.factors
            if len(factor.parts) > 1
        }
    )
    for template in templates.values():
        again = pw.parse_formula(template, nested, family=spec.family)
        assert (again.outcome, again.trials, again.exposure, again.family) == (
            spec.outcome,
            spec.trials,
            spec.exposure,
            spec.family,
        )


@fuzz(1500)
@given(formula_soup)
def test_fuzz_formula_soup(formula):
    check_formula(formula)


@fuzz(200)
@given(st.text(max_size=60))
def test_fuzz_formula_any_text(formula):
    check_formula(formula)
    check_formula(formula + " ~ x")


@fuzz(1200)
@given(grammar_formulas())
def test_fuzz_formula_grammar(case):
    formula, calls_something_else = case
    if calls_something_else:
        with pytest.raises(pw.PoolwiseError):
            pw.parse_formula(formula, DATA)
    check_formula(formula)


@fuzz(150)
@given(formula_soup)
def test_fuzz_cli_templates(formula):
    result = runner.invoke(app, ["templates", "--", formula])  # "--": a formula may start with "-"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2)
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and result.stdout == ""
    else:
        assert result.stdout.startswith("Complete pooling: p(")


# ---------------------------------------------------------------------------------------------
# 2. Hypothesis: CSV files, counts, priors
# ---------------------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        "k",
        "n",
        "g",
        "x",
        " k",
        "k ",
        "a b",
        "größe",
        "a,b",
        'a"b',
        "",
        "k.1",
        "Unnamed: 0",
        "ünï cödé",
        "🙂",
        "x\ny",
        "\ufeffk",
        "1",
        "nan",
        "True",
        "k;n",
    ]
) | st.text(max_size=6)
CELLS = st.one_of(
    st.integers(-3, 60).map(str),
    st.integers(2**53 - 2, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "",
            "NA",
            "nan",
            "inf",
            "-inf",
            "True",
            "false",
            "x",
            "1e3",
            "1,5",
            "1.0",
            "-0",
            " 7 ",
            "٣",
            "0x10",
            "18446744073709551616",
            "9223372036854775808",
            '"3"',
            '"',
            "a\nb",
            "1;2",
        ]
    ),
    st.text(max_size=4),
)


@st.composite
def csv_files(draw) -> tuple[bytes, str]:
    """CSV-ish bytes: random headers (duplicates, unicode, spaces), ragged rows of mixed cells,
    separators, line endings, BOM, quoting, truncation; or raw bytes; and a file suffix."""
    mode = draw(st.sampled_from(["bytes", "wild", "wild", "plausible", "plausible", "plausible"]))
    if mode == "bytes":
        return draw(st.binary(max_size=120)), draw(st.sampled_from([".csv", ".parquet", ".txt"]))
    if mode == "wild":
        columns = draw(st.lists(HEADER_NAMES, max_size=5))
        rows = [
            [draw(CELLS) for _ in range(max(0, len(columns) + draw(st.integers(-1, 1)) * draw(st.integers(0, 1))))]
            for _ in range(draw(st.integers(0, 6)))
        ]
    else:  # the shape of real data (k of n per group and treatment), with a few things wrong
        columns = draw(st.permutations(["k", "n", "g", "x"]))[: draw(st.integers(2, 4))]
        columns += [draw(HEADER_NAMES)] if draw(st.integers(0, 3)) == 0 else []
        rows = []
        for _ in range(draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 6, 6]))):
            n = draw(st.integers(1, 50))
            cells = {
                "k": str(draw(st.integers(0, n))),
                "n": str(n),
                "g": draw(st.sampled_from(["a", "b", "ü ü", "1"])),
                "x": draw(st.sampled_from(["0", "1"])),
            }
            rows.append([cells.get(name, draw(CELLS)) for name in columns])
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
            if rows and columns:
                rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, len(columns) - 1))] = draw(CELLS)
    if columns and draw(st.integers(0, 4)) == 0:
        columns.append(draw(st.sampled_from(columns)))  # a duplicated column
    sep = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if draw(st.booleans()):
        buffer = io.StringIO()
        csv.writer(
            buffer,
            delimiter=sep,
            lineterminator=newline,
            quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        ).writerows([columns, *rows])
        text = buffer.getvalue()
    else:
        text = newline.join(sep.join(row) for row in [columns, *rows]) + draw(st.sampled_from(["", newline]))
    if draw(st.integers(0, 4)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    encoded = ("\ufeff" if draw(st.booleans()) else "") + text
    encoding = draw(st.sampled_from(["utf-8"] * 8 + ["latin-1", "utf-16"]))
    return encoded.encode(encoding, errors="replace"), ".csv"


def quoted(name) -> str:
    """A column name as a formula writes it: plain, or in backquotes."""
    return str(name) if re.fullmatch(r"[A-Za-z][\w.]*", str(name)) else f"`{name}`"


def check_counts(prepared: pd.DataFrame, successes: str, trials: str) -> None:
    """What a validated count table promises."""
    assert len(prepared) > 0
    k, n = prepared[successes], prepared[trials]
    assert k.dtype == np.int64 and n.dtype == np.int64
    assert (k >= 0).all() and (n > 0).all() and (k <= n).all()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@fuzz(600)
@given(csv_files(), st.data())
def test_fuzz_csv_files(scratch, case, data):
    content, suffix = case
    path = scratch / f"input{suffix}"
    path.write_bytes(content)
    try:
        frame = pw.read_data(path)
    except Exception as err:  # noqa: BLE001
        event(f"file refused: {kind(assert_one_line(err))}")
        return
    assert isinstance(frame, pd.DataFrame) and not frame.columns.duplicated().any()
    columns = list(frame.columns)
    if len(columns) < 2:
        event("file read, < 2 columns")
        return
    k, n, g = (
        name if name in columns and data.draw(st.integers(0, 3)) else data.draw(st.sampled_from(columns))
        for name in ("k", "n", "g")
    )
    formula = data.draw(
        st.sampled_from([f"p({quoted(k)}, {quoted(n)}) ~ 1 + (1|{quoted(g)})", f"{quoted(k)} ~ (1|{quoted(g)})"])
    )
    try:
        spec = pw.parse_formula(formula, frame)
        prepared, spec, _ = prepare_data(spec, frame)
    except Exception as err:  # noqa: BLE001
        event(f"file read, then refused: {kind(assert_one_line(err))}")
        return
    if spec.trials is None:
        assert spec.family == "gaussian" and np.isfinite(prepared[spec.outcome].to_numpy(dtype=float)).all()
        event("file read, gaussian values valid")
        return
    check_counts(prepared, spec.outcome, spec.trials)
    event("file read, counts valid")


def mostly(usual: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` three times in four, else ``odd`` (one_of would weigh odd's many branches more)."""
    return st.integers(0, 3).flatmap(lambda i: odd if i == 0 else usual)


VALUES = st.one_of(
    st.integers(-5, 40),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.sampled_from([np.nan, pd.NA, "7", "1e2", 2**63, 2**64 - 1]),
)


@fuzz(600)
@given(
    st.lists(
        st.tuples(
            mostly(st.integers(0, 9), VALUES),
            mostly(st.integers(9, 30), VALUES),
            mostly(st.sampled_from(["a", "b"]), st.sampled_from([None, np.nan, 1, 2.5, ""])),
        ),
        max_size=8,
    ),
    st.sampled_from(["p(k, n) ~ 1 + (1|g)", "cbind(k, n - k) ~ (1|g)", "k ~ (1|g)", "p(k, n) ~ g"]),
)
def test_fuzz_counts(rows, formula):
    frame = pd.DataFrame(rows, columns=["k", "n", "g"])
    try:
        spec = pw.parse_formula(formula, frame)
        prepared, spec, notes = prepare_data(spec, frame)
    except Exception as err:  # noqa: BLE001
        event(f"refused: {kind(assert_one_line(err))}")
        return
    event(f"valid {spec.family}")
    if spec.trials is None:  # k ~ ... with signed or real values reads as gaussian, as lmer would
        assert spec.family == "gaussian" and np.isfinite(prepared["k"].to_numpy(dtype=float)).all()
        return
    check_counts(prepared, spec.outcome, spec.trials)
    total = (frame["k"].astype(str) == spec.level).sum() if spec.trials == "k_n" else None
    if total is not None:  # two-valued rows aggregate to the count of the success level and of rows
        assert prepared["k"].sum() == total and prepared["k_n"].sum() == len(frame)


DISTRIBUTIONS = [
    "Normal",
    "HalfNormal",
    "StudentT",
    "Uniform",
    "Flat",
    "Beta",
    "Distribution",
    "normal",
    "os",
    "eval",
    "__class__",
    "Prior",
    "Model",
    "Data",
    "sample",
    "Normal.dist",
]
PRIOR_VALUES = st.sampled_from(
    [
        "0",
        "1",
        "-1.5",
        "1e400",
        "nan",
        '"a"',
        "None",
        "[1, 2]",
        "(1,)",
        "{1: 2}",
        "{[]: 1}",
        "{1, []}",
        "x",
        "os.getpid()",
        "lambda: 0",
        "10**9",
        "1_0",
        "True",
        "1j",
        "'" + "9" * 5000 + "'",
        "9" * 5000,
    ]
)


@st.composite
def prior_texts(draw) -> str:
    def dist(depth: int) -> str:
        args = []
        for _ in range(draw(st.integers(0, 3))):
            name = draw(st.sampled_from(["mu", "sigma", "nu", "lower", "upper", "alpha", "beta", "**k", "1", ""]))
            value = dist(depth + 1) if depth < 2 and draw(st.integers(0, 3)) == 0 else draw(PRIOR_VALUES)
            args.append(f"{name}={value}" if name and not name.startswith("*") else f"{name}{value}")
        return f"{draw(st.sampled_from(DISTRIBUTIONS))}({', '.join(args)})"

    return draw(
        st.one_of(
            st.builds(dist, st.just(0)),
            st.text(max_size=30),
            st.sampled_from(
                [
                    "",
                    "Normal",
                    "Normal(",
                    "Normal(mu=0",
                    "Normal(mu=0))",
                    "\x00",
                    "Normal(mu=0)\x00",
                    "(" * 300 + ")" * 300,
                    "Normal(mu=" * 120 + "0" + ")" * 120,
                    "Normal(mu=0); import os",
                    "Normal(**{'mu': 0})",
                ]
            ),
        )
    )


@fuzz(300)
@given(prior_texts())
def test_fuzz_prior_strings(text):
    import bambi as bmb

    try:
        prior = parse_prior(text)
    except Exception as err:  # noqa: BLE001
        assert_one_line(err)
        return
    assert isinstance(prior, bmb.Prior)


@fuzz(300)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=8),
        st.sampled_from(["chapter", "Chapter", "preset"]),
        st.integers(),
        st.lists(st.text(max_size=3)),
        st.dictionaries(
            st.one_of(st.sampled_from(["preset", "Intercept", "x", "1|g", "x|g", "C(g)"]), st.text(max_size=4)),
            st.one_of(st.sampled_from(["chapter", "Normal(mu=0, sigma=1)", "nope"]), st.integers(), st.none()),
            max_size=4,
        ),
    ),
    st.sampled_from(["complete", "none", "partial"]),
)
def test_fuzz_prior_settings(priors, pooling):
    """Priors as a user passes them (None, a preset, a dict, or the wrong type): resolved to term ->
    string for one model, or refused in one line; unknown terms are refused by check_terms."""
    spec = pw.parse_formula("p(k, n) ~ x + (x|g)", DATA)
    try:
        resolved = prior_strings(priors, spec, pooling)
        check_terms(resolved, {"Intercept", "x", "1|g", "x|g", "C(g)", "C(g):x"}, pooling)
    except Exception as err:  # noqa: BLE001
        assert_one_line(err)
        return
    assert all(isinstance(term, str) and isinstance(text, str) for term, text in resolved.items())


@fuzz(100)
@given(st.text(max_size=12))
def test_fuzz_pooling_names(name):
    try:
        found = find_pooling(name)
    except Exception as err:  # noqa: BLE001
        assert_one_line(err)
        return
    assert name in (found.name, *found.aliases)


@fuzz(80)
@given(csv_files(), st.sampled_from(["p(k, n) ~ x + (x|g)", "p(k, n) ~ (1|g)", "k ~ x + (1|g)", "p(k, n) ~ x"]))
def test_fuzz_cli_check(scratch, case, formula):
    content, suffix = case
    path = scratch / f"cli{suffix}"
    path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner.invoke(app, ["check", str(path), formula])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (
            "99999999999999999999999",
            "k is larger than 2**53 in row 1; counts that large cannot be held exactly; check the column",
        ),
        (
            "18446744073709551615",
            "k is larger than 2**53 in row 1; counts that large cannot be held exactly; check the column",
        ),
        ("1e300", "k is larger than 2**53 in row 1; counts that large cannot be held exactly; check the column"),
    ],
)
def test_huge_counts_are_refused(tmp_path, cell, message):
    """Regression (issue 10 fuzzing): counts beyond int64 used to wrap to negative numbers and pass."""
    path = tmp_path / "huge.csv"
    path.write_text(f"k,n,g\n{cell},{cell}0,a\n")
    frame = pw.read_data(path)
    with pytest.raises(pw.PoolwiseError) as err:
        prepare_data(pw.parse_formula("p(k, n) ~ (1|g)", frame), frame)
    assert assert_one_line(err.value) == message


@pytest.mark.parametrize(
    ("priors", "message"),
    [
        ({"x": "Normal(**{})"}, "prior 'Normal(**{})' has unnamed arguments; name them, e.g. Normal(mu=0, sigma=1)"),
        ({"x": "Normal(mu={[]: 1})"}, "prior 'Normal(mu={[]: 1})': mu must be a number or a distribution"),
        (
            {"x": None},
            "priors map term names to distribution strings, got str -> NoneType; write e.g. {'x': 'Normal(mu=0, sigma=1)'}",
        ),
        (
            {1: "Normal()"},
            "priors map term names to distribution strings, got int -> str; write e.g. {'x': 'Normal(mu=0, sigma=1)'}",
        ),
        (["chapter"], "priors must be a preset name or a dict of term -> distribution string, not a list"),
    ],
)
def test_prior_input_errors(priors, message):
    """Regression (issue 10 fuzzing): these raised TypeError/AttributeError deep in priors or Bambi."""
    spec = pw.parse_formula("p(k, n) ~ x + (x|g)", DATA)
    with pytest.raises(pw.PoolwiseError) as err:
        for text in prior_strings(priors, spec, "partial").values():
            parse_prior(text)
    assert assert_one_line(err.value) == message


def test_intercept_only_rows_aggregate_to_one_row():
    """Regression (issue 10 fuzzing): a 0/1 outcome with no predictors (signed ~ 1) raised pandas'
    'No group keys passed!'; it aggregates to one binomial count, which Bambi cannot fit, so it is
    refused in one line with the rate itself."""
    rows = pd.DataFrame({"signed": [0, 1, 1, 0, 1]})
    with pytest.raises(pw.PoolwiseError) as err:
        prepare_data(pw.parse_formula("signed ~ 1", rows), rows)
    assert assert_one_line(err.value) == (
        "all 5 rows collapse into one count (the formula has no predictor or group that tells them apart); the rate "
        "is simply 3 / 5: add a predictor or group term to model it"
    )


# ---------------------------------------------------------------------------------------------
# 5. Hypothesis: categorical levels and several grouping factors, up to the Bambi model
# ---------------------------------------------------------------------------------------------

LEVELS = st.sampled_from(["A", "B", "c d", "é", "ß ü", "1", "01", "2.0", "True", "🙂", " x ", "NA", "-1"])
LAYOUTS = [
    "p(k, n) ~ arm + (1|g)",
    "p(k, n) ~ arm + (arm|g)",
    "p(k, n) ~ arm + (1|g) + (1|h)",
    "p(k, n) ~ arm + (1|g/h)",
    "y ~ arm + (1|g) + (1|h)",
    "y ~ factor(arm) + (1|g:h)",
    "y[A] ~ arm + (1|g)",
    "k ~ arm + offset(log(n)) + (1|g) + (1|h)",
    "y ~ arm + (1 + arm||g)",
]


@fuzz(150)
@given(
    st.lists(
        st.tuples(LEVELS, LEVELS, LEVELS, st.integers(0, 5), st.integers(5, 9), st.sampled_from(["A", "B"])),
        min_size=1,
        max_size=14,
    ),
    st.sampled_from(LAYOUTS),
)
def test_fuzz_levels_and_factors(rows, formula):
    """Odd level labels, unbalanced and singleton groups, nested ids and two factors: every
    formula either builds all three Bambi models or is refused in one line (no sampling)."""
    frame = pd.DataFrame(rows, columns=["arm", "g", "h", "k", "n", "y"])
    try:
        spec = pw.parse_formula(formula, frame)
        prepared, spec, _ = prepare_data(spec, frame)
        pw.check(formula, frame)
        for pooling in ("complete", "none", "partial"):
            fitting_module().build_model(spec, prepared, pooling, {})
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions escape
        event(f"refused: {kind(assert_one_line(err))}")
        return
    event(f"built {spec.family}, {len(spec.factors)} factor(s)")
    assert {factor.name for factor in spec.factors} <= set(prepared.columns)
