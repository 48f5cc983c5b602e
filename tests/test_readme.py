"""README.md stays true to the commands it shows and to the defaults it states (issue 33).

- Every `hepbench ...` command in README.md's code (fenced blocks and inline code) names existing
  sub-commands and options of hepbench's own argparse parsers, and an option with choices gets one
  of them (`--device auto|cpu|gpu`: each alternative).
- Every option of the image's driver it shows (after `entrypoint.sh`, after the image of a
  `docker|podman|apptainer run`, and in the paragraph that introduces `entrypoint.sh --help`) is in
  `entrypoint.sh --help`, with its alternatives named in that option's help; the words `-x` passes
  on are checked as `hepbench run` options.
- Every `make` target and variable it names is the Makefile's.
- Every default that README.md, `hepbench run --help` and `entrypoint.sh --help` state equals
  hepbench/mlpf/defaults.yaml's (the data subset's sizes: the Makefile's), and so does every
  "`section.key` N" in README.md and docs/. A phrase a check looks for that is no longer there fails
  too, so that a reworded README cannot leave a check with nothing to check.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from hepbench.cli import build_parser
from hepbench.mlpf.run.cli import run_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
DEFAULTS = yaml.safe_load((ROOT / "hepbench" / "mlpf" / "defaults.yaml").read_text(encoding="utf-8"))
BENCH, DATA, GPU = DEFAULTS["bench"], DEFAULTS["data"], DEFAULTS["gpu"]
IMAGE = re.compile(r"(^|/)mlpf-bmk(\.sif|:[\w.-]+)?$")
RUNTIMES = ("docker", "podman", "apptainer", "singularity")


def _makefile_value(name: str) -> str:
    return re.search(rf"^{name}\s*\?=\s*(\S+)", MAKEFILE, re.M).group(1)


def _number(text: str) -> int | str:
    return int(text.replace(",", "")) if re.fullmatch(r"[\d,]+", text) else text


def _snippets(text: str):
    """(code, paragraph) for every line of a fenced block (continuation lines joined) and every inline
    code span; paragraph is the prose paragraph of an inline span, "" for a fenced line."""
    prose = []
    for i, part in enumerate(re.split(r"^```.*$", text, flags=re.M)):
        if i % 2:  # inside a fence
            for line in part.replace("\\\n", " ").splitlines():
                yield line, ""
        else:
            prose.append(part)
    for paragraph in re.split(r"\n\s*\n", "\n".join(prose)):
        for span in re.findall(r"`([^`\n]+)`", paragraph):
            yield span, paragraph


def _words(code: str) -> list[str]:
    code = re.sub(r"(^|\s)#.*$", "", code)  # a shell comment
    try:
        return shlex.split(code)
    except ValueError:  # prose with an apostrophe, in the layout block
        return code.split()


def _subparsers(parser: argparse.ArgumentParser):
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _check_options(parser, words: list[str], where: str, scale: bool = False) -> list[str]:
    problems = []
    for k, word in enumerate(words):
        word = word.strip("[]")
        if word == "--":
            if not scale:
                break
            parser, scale = run_parser(), False  # `hepbench scale ... -- RUN OPTIONS`
            continue
        if not re.match(r"--?[A-Za-z]", word):
            continue
        option = word.split("=", 1)[0]
        action = parser._option_string_actions.get(option)
        if action is None:
            problems.append(f"{where}: {parser.prog} has no option {option}")
            continue
        value = words[k + 1].strip("[]") if k + 1 < len(words) else ""
        if action.choices and value and not value.startswith("-") and not value.isupper() and "..." not in value:
            problems += [
                f"{where}: {parser.prog} {option} has no choice {alt!r} (choices: {list(action.choices)})"
                for alt in value.split("|")
                if alt not in action.choices
            ]
    return problems


def _check_hepbench(words: list[str], where: str) -> list[str]:
    parser = build_parser()
    k = 0
    while (sub := _subparsers(parser)) is not None and k < len(words) and words[k] in sub.choices:
        parser, k = sub.choices[words[k]], k + 1
    if _subparsers(parser) is not None and k < len(words) and not words[k].startswith("-"):
        return [f"{where}: {parser.prog} has no command {words[k]!r}"]
    return _check_options(parser, words[k:], where, scale=parser.prog.endswith(" scale"))


def _driver_options(help_text: str) -> dict[str, str]:
    """Each option of the help's option column -> its help text (continuation lines included)."""
    options, current = {}, []
    for line in help_text.splitlines():
        m = re.match(r"^ {2,6}(-{1,2}[\w-]+(?:, -{1,2}[\w-]+)*)", line)
        if m:
            current = re.findall(r"-{1,2}[\w-]+", m.group(1))
            for name in current:
                options[name] = line
        elif line.startswith(" " * 20):
            for name in current:
                options[name] += " " + line.strip()
        else:
            current = []
    return options


def _check_driver(words: list[str], options: dict[str, str], where: str) -> list[str]:
    problems = []
    k = 0
    while k < len(words):
        word = words[k].strip("[]")
        value = words[k + 1] if k + 1 < len(words) else ""
        if word in ("-x", "--extra-args"):  # the words it passes on are hepbench run's
            problems += _check_options(run_parser(), value.split(), where)
            k += 2
            continue
        if re.match(r"--?[A-Za-z]", word):
            if word not in options:
                problems.append(f"{where}: entrypoint.sh --help has no option {word}")
            elif "|" in value:
                problems += [
                    f"{where}: entrypoint.sh --help does not name {alt!r} for {word}"
                    for alt in value.split("|")
                    if not re.search(rf"\b{re.escape(alt)}\b", options[word])
                ]
        k += 1
    return problems


def _check_make(words: list[str], where: str) -> list[str]:
    targets = set(re.findall(r"^([\w-]+)\s*:(?!=)", MAKEFILE, re.M))
    variables = set(re.findall(r"^([A-Z_]+)\s*[?:]?=", MAKEFILE, re.M))
    problems = []
    for word in words:
        if "=" in word:
            if word.split("=", 1)[0] not in variables:
                problems.append(f"{where}: the Makefile sets no variable {word.split('=', 1)[0]}")
        elif not word.startswith("-") and word not in targets:
            problems.append(f"{where}: the Makefile has no target {word!r}")
    return problems


def _problems(text: str, driver_options: dict[str, str]) -> list[str]:
    """What README-like `text` gets wrong about hepbench, entrypoint.sh and make."""
    problems = []
    for code, paragraph in _snippets(text):
        words, where = _words(code), code.strip()
        for k, word in enumerate(words):
            name = Path(word).name
            if name == "hepbench":
                problems += _check_hepbench(words[k + 1 :], where)
                break
            if name == "entrypoint.sh":
                problems += _check_driver(words[k + 1 :], driver_options, where)
                break
            if word == "make" and k == 0:
                problems += _check_make(words[1:], where)
                break
            if IMAGE.search(word) and any(w in RUNTIMES for w in words[:k]) and "run" in words[:k]:
                problems += _check_driver(words[k + 1 :], driver_options, where)
                break
        else:
            if "entrypoint.sh --help" in paragraph and code.startswith("-"):
                problems += _check_driver(words, driver_options, where)
    return problems


@pytest.fixture(scope="module")
def entrypoint_help(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("driver")
    env = {"PATH": os.environ["PATH"], "HEPBENCH_HOME": str(tmp / "opt"), "TMPDIR": str(tmp)}
    r = subprocess.run(
        ["/bin/bash", str(ROOT / "entrypoint.sh"), "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_every_command_and_option_in_the_readme_exists(entrypoint_help):
    assert _problems(README, _driver_options(entrypoint_help)) == []


def test_the_check_finds_what_a_readme_could_get_wrong(entrypoint_help):
    # The same check on lines that are wrong in each way it looks for, one problem each.
    wrong = "\n".join(
        [
            "```sh",
            "hepbench run --windowz 3",
            "hepbench data synthesize --out DIR",
            "hepbench run --device tpu",
            "hepbench scale --ranks 1,2 -- --copiez 2",
            "docker run --rm -v $PWD:/results mlpf-bmk -W -q",
            "apptainer run -B x:/results mlpf-bmk.sif -M cpu|tpu",
            "entrypoint.sh -x '--precision fp8'",
            "make runn",
            "make run TRAIN_EVENT=20",
            "```",
            "",
            "`entrypoint.sh --help` lists `-Z` too.",
            "",
        ]
    )
    problems = _problems(wrong, _driver_options(entrypoint_help))
    expected = [
        "no option --windowz",
        "no command 'synthesize'",
        "no choice 'tpu'",
        "no option --copiez",
        "no option -q",
        "does not name 'tpu' for -M",
        "no choice 'fp8'",
        "no target 'runn'",
        "no variable TRAIN_EVENT",
        "no option -Z",
    ]
    assert len(problems) == len(expected), problems
    for problem, text in zip(problems, expected):
        assert text in problem


def _stated(text: str, pattern: str) -> list[list]:
    matches = [[_number(g) for g in m.groups()] for m in re.finditer(pattern, text)]
    assert matches, f"no match of {pattern!r}: update this test with the text"
    return matches


# What README.md states (whitespace and bold markers collapsed), and the values it must state.
README_DEFAULTS = [
    (r"(\d+) warm-up step", [BENCH["warmup_steps"]]),
    (r"(\d+) timed windows", [BENCH["windows"]]),
    (r"(\d+) windows of \d+ (?:events|steps)", [BENCH["windows"]]),
    (
        r"of ([\d,]+) events on a CPU \(([\d,]+) on a GPU\)",
        [BENCH["cpu_events_per_window"], BENCH["gpu_events_per_window"]],
    ),
    (
        r"in batches of (\d+) events \((\d+) in (\w+) on a GPU\)",
        [DATA["batch_size"], GPU["data"]["batch_size"], GPU["train"]["precision"]],
    ),
    (r"window \d+/(\d+): (\d+) events", [BENCH["windows"], BENCH["cpu_events_per_window"]]),
    (r"validation: (\d+) events", [BENCH["cpu_validation_events"]]),
    (r"([\d,]+) ttbar events", [int(_makefile_value("TRAIN_EVENTS"))]),
    (r"synthetic, (\d+) train events", [int(_makefile_value("TRAIN_EVENTS"))]),
    (r"([\d,]+) QCD events", [int(_makefile_value("TEST_EVENTS"))]),
    (r"\bseed (\d+)", [int(_makefile_value("SEED"))]),
]


@pytest.mark.parametrize("pattern, expected", README_DEFAULTS, ids=[p for p, _ in README_DEFAULTS])
def test_the_defaults_the_readme_states_are_defaults_yaml_s(pattern, expected):
    text = re.sub(r"\s+", " ", README.replace("**", ""))
    for stated in _stated(text, pattern):
        assert stated == expected, f"README.md states {stated} for {pattern!r}; the defaults are {expected}"


def test_the_driver_help_states_the_runs_defaults(entrypoint_help):
    run = {a.dest: a for a in run_parser()._actions}
    text = re.sub(r"\s+", " ", entrypoint_help)
    assert _stated(text, r"(\d+) on a CPU, (\d+) on a GPU") == [
        [BENCH["cpu_events_per_window"], BENCH["gpu_events_per_window"]]
    ]
    assert _stated(text, r"--copies N .*?default (\d+)") == [[run["copies"].default]]
    assert _stated(text, r"-M MODE .*?\(default: (\w+)") == [[run["device"].default]]


def test_hepbench_run_help_states_defaults_yaml_s_values():
    helps = {a.dest: re.sub(r"\s+", " ", a.help or "") for a in run_parser()._actions}
    assert _stated(helps["events"], r"default (\d+) on a CPU, (\d+) on a GPU") == [
        [BENCH["cpu_events_per_window"], BENCH["gpu_events_per_window"]]
    ]
    assert _stated(helps["batch_size"], r"default (\d+) on a CPU, (\d+) on a GPU") == [
        [DATA["batch_size"], GPU["data"]["batch_size"]]
    ]
    assert _stated(helps["windows"], r"default (\d+)") == [[BENCH["windows"]]]
    assert _stated(helps["warmup_steps"], r"default (\d+)") == [[BENCH["warmup_steps"]]]


@pytest.mark.parametrize(
    "page",
    [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: p.name if p.parent.name == "docs" else "README.md",
)
def test_a_setting_named_with_a_value_has_defaults_yaml_s_value(page):
    # "`bench.windows` (6)", "`data.batch_size` = 2", "`bench.gpu_events_per_window` 10,000".
    pattern = r"`(bench|data|train|model)\.([a-z_]+)`\s*(?:=\s*)?\(?(\d[\d,]*)(?![\w.])"
    wrong = [
        f"{m.group(0)!r}: defaults.yaml says {DEFAULTS[m.group(1)].get(m.group(2))}"
        for m in re.finditer(pattern, page.read_text(encoding="utf-8"))
        if _number(m.group(3)) != DEFAULTS[m.group(1)].get(m.group(2))
    ]
    assert not wrong, f"{page.name}: " + "; ".join(wrong)
