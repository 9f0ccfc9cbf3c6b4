#!/usr/bin/env python3
"""Fails when a command that the scripts, the tests or the Makefile run is not installed by scripts/setup.sh.

`make test` runs on a fresh Debian 12 machine, so every program it starts must come from the set-up script,
from what every Debian system has, or from the machine's Rust toolchain. This finds the programs:
  - shell (scripts/*.sh, .ci/run, the Makefile's recipes): the first word of every simple
    command, read from shfmt's syntax tree (also after `sudo`, `exec`, `command -v`, `env`, `timeout`);
  - Python (scripts/*.py): the literal program of subprocess calls, read from Python's own syntax tree;
  - Rust (tests/, testkit/, benches/, examples/, src/): `Command::new("...")`, the test kit's
    `run`/`run_quietly`/`spawn_lines`, `Need::Tool`/`Need::File` and `require_tool` with a literal program;
and accepts a program when it is
  - in .tools/ (only scripts/setup.sh writes there: the venv's commands, helm, kubectl), or
  - owned (dpkg -S) by a package that scripts/setup.sh installs (its `apt_packages`) or one those depend on,
    or by an Essential or Priority: required package (on every Debian system), or
  - one the machine has before any set-up (MACHINE below: rustup's cargo and rustc, and make, which runs the
    set-up), or a function the script defines (or a repository file it sources does), a shell builtin, or a path
    inside the repository.
A program that is not installed here at all fails too, with where it is called. benches/*.sh are run by hand
and not by `make`; they are not read.

usage: check-tools.py [--setup SETUP_SCRIPT]   (default: scripts/setup.sh)
"""

import ast
import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
# On the machine before any set-up: the Rust toolchain (rustup) and make, which runs the set-up itself.
MACHINE = {"cargo", "rustc", "rustup", "make"}
BUILTINS = set(
    "alias bg break builtin cd command continue declare dirs disown echo enable eval exec exit export false fc fg "
    "getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly "
    "return set shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait "
    ". : [".split()
)
# Wrappers whose first non-option argument is the program they run.
WRAPPERS = {"sudo", "exec", "env", "timeout", "nice", "nohup", "xargs", "setpriv", "unshare", "stdbuf"}
RUST_CALLS = re.compile(
    r'(?:Command::new|\brun|\brun_quietly|\bspawn_lines|\brequire_tool)\(\s*"([^"\s]+)"'
    r'|Need::(?:Tool|File)\(\s*"([^"]+)"'
)
SUBPROCESS = {"run", "Popen", "call", "check_call", "check_output"}


def shell_tree(text, where):
    done = subprocess.run(["shfmt", "--to-json"], input=text, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"check-tools: shfmt cannot parse {where}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def literal(word):
    parts = word.get("Parts", [])
    if len(parts) == 1 and parts[0].get("Type") == "Lit":
        return parts[0]["Value"]
    if len(parts) == 1 and parts[0].get("Type") == "SglQuoted":
        return parts[0]["Value"]
    return None


def walk(node):
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key not in ("Pos", "End"):
                yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def program_of(words):
    """The program a simple command runs, looking through wrappers; None when it is not a literal."""
    words = list(words)
    while words:
        first = words.pop(0)
        if first is None:
            return None
        if first == "command" and words[:1] == ["-v"]:
            return words[1] if len(words) > 1 else None
        if first in WRAPPERS:
            while words and (words[0] is None or words[0].startswith("-") or "=" in words[0]
                             or (first == "timeout" and re.fullmatch(r"[0-9.]+[smhd]?", words[0]))):
                if words[0] is None:
                    return None
                words.pop(0)
            continue
        return first
    return None


def functions_of(tree):
    return {n["Name"]["Value"] for n in walk(tree) if n.get("Type") == "FuncDecl"}


def sourced_functions(tree):
    """The functions of the repository's files a script sources (`source scripts/checks.sh`)."""
    names = set()
    for node in walk(tree):
        if node.get("Type") == "CallExpr" and node.get("Args"):
            words = [literal(a) for a in node["Args"]]
            if words[0] in ("source", ".") and len(words) > 1 and words[1] and (ROOT / words[1]).is_file():
                names |= functions_of(shell_tree((ROOT / words[1]).read_text(), words[1]))
    return names


def shell_programs(text, where):
    tree = shell_tree(text, where)
    functions = functions_of(tree) | sourced_functions(tree)
    for node in walk(tree):
        if node.get("Type") == "CallExpr" and node.get("Args"):
            program = program_of(literal(a) for a in node["Args"])
            if program and program not in functions:
                yield program, f"{where}:{node['Pos']['Line']}"


def makefile_programs(path):
    """The Makefile's recipe lines ($(CARGO) as cargo) as one shell text, other lines blank to keep numbers."""
    lines = [line.lstrip("\t").lstrip("@-").replace("$(CARGO)", "cargo") if line.startswith("\t") else ""
             for line in path.read_text().splitlines()]
    return shell_programs("\n".join(lines) + "\n", path.name)


def python_programs(path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SUBPROCESS:
            first = node.args[0] if node.args else None
            if isinstance(first, (ast.List, ast.Tuple)) and first.elts and isinstance(first.elts[0], ast.Constant):
                yield first.elts[0].value, f"{path.relative_to(ROOT)}:{node.lineno}"


def rust_programs(path):
    text = path.read_text()
    for match in RUST_CALLS.finditer(text):
        program = match.group(1) or match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        yield program, f"{path.relative_to(ROOT)}:{line}"


def setup_packages(setup):
    """Every package named in the set-up script's apt_packages array (its `=` and `+=` assignments)."""
    packages = set()
    for node in walk(shell_tree(setup.read_text(), str(setup))):
        for assign in node.get("Assigns") or []:
            if assign["Name"]["Value"] == "apt_packages" and assign.get("Array"):
                packages |= {literal(e["Value"]) for e in assign["Array"]["Elems"]}
    packages.discard(None)
    if not packages:
        sys.exit(f"check-tools: no apt_packages array in {setup}")
    return packages


def installed_packages():
    """name -> (dependencies, essential or required); virtual names map to their providers."""
    fmt = "${Package}\t${Status}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\t${Provides}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, check=True).stdout
    packages, providers = {}, {}
    for line in out.splitlines():
        name, status, essential, priority, depends, provides = line.split("\t")
        if not status.endswith("installed") or "not-installed" in status:
            continue
        deps = {re.sub(r"[:\s(].*", "", alt.strip()) for dep in depends.split(",") for alt in dep.split("|")}
        packages[name] = (deps - {""}, essential == "yes" or priority == "required")
        for virtual in provides.split(","):
            providers.setdefault(re.sub(r"[:\s(].*", "", virtual.strip()), set()).add(name)
    return packages, providers


def closure(roots, packages, providers):
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        for real in ({name} if name in packages else providers.get(name, set())) - seen:
            seen.add(real)
            todo.extend(packages[real][0])
    return seen


def owners(paths):
    """path -> Debian package, from one `dpkg -S` (merged /usr: dpkg may know /bin/x for /usr/bin/x)."""
    names = {str(p) for p in paths}
    names |= {n.replace("/usr/bin/", "/bin/", 1) for n in names if n.startswith("/usr/bin/")}
    names |= {n.replace("/usr/sbin/", "/sbin/", 1) for n in names if n.startswith("/usr/sbin/")}
    out = subprocess.run(["dpkg", "-S", *sorted(names)], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        package = package.split(",")[0].split(":")[0].strip()
        found[path] = package
        found[path.replace("/bin/", "/usr/bin/", 1) if path.startswith("/bin/") else path] = package
        found[path.replace("/sbin/", "/usr/sbin/", 1) if path.startswith("/sbin/") else path] = package
    return found


def main(argv):
    setup = ROOT / "scripts" / "setup.sh"
    if argv[:1] == ["--setup"] and len(argv) == 2:
        setup = pathlib.Path(argv[1])
    elif argv:
        print(__doc__, file=sys.stderr)
        return 2
    if not any((pathlib.Path(d) / "shfmt").is_file() for d in os.environ.get("PATH", "").split(os.pathsep)):
        print("check-tools: shfmt is not installed (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    uses = []
    for path in sorted([*ROOT.glob("scripts/*.sh"), ROOT / ".ci" / "run"]):
        uses += shell_programs(path.read_text(), str(path.relative_to(ROOT)))
    uses += makefile_programs(ROOT / "Makefile")
    for path in sorted(ROOT.glob("scripts/*.py")):
        uses += python_programs(path)
    for folder in ("tests", "testkit", "benches", "examples", "src"):
        for path in sorted((ROOT / folder).rglob("*.rs")):
            uses += rust_programs(path)

    packages, providers = installed_packages()
    provided = closure(setup_packages(setup), packages, providers)
    base = closure({name for name, (_, basic) in packages.items() if basic}, packages, providers)
    search = [TOOLS / "bin", TOOLS / "venv" / "bin", *map(pathlib.Path, os.environ.get("PATH", "").split(os.pathsep))]
    programs = {p for p, _ in uses if p not in BUILTINS | MACHINE and ("/" not in p or p.startswith("/"))}
    candidates = {p: [c for c in ([pathlib.Path(p)] if p.startswith("/") else [d / p for d in search])
                      if c.is_file() and os.access(c, os.X_OK)] for p in programs}
    package_of = owners({x for cs in candidates.values() for c in cs for x in (c, c.resolve())})
    failures = []
    for program, where in uses:
        if program in BUILTINS or program in MACHINE:
            continue
        if "/" in program and not program.startswith("/"):
            if not (ROOT / program).exists() and not program.startswith("target/"):
                failures.append(f"FAIL {where}: {program} is not a path in the repository")
            continue
        problem = verdict(candidates[program], package_of, provided | base)
        if problem:
            failures.append(f"FAIL {where}: {program} {problem}")
    for line in failures:
        print(line, file=sys.stderr)
    if failures:
        print(f"check-tools: FAILED ({setup.relative_to(ROOT) if setup.is_relative_to(ROOT) else setup})", file=sys.stderr)
        return 1
    print(f"check-tools: {len({p for p, _ in uses})} programs called in {len({w.split(':')[0] for _, w in uses})} "
          f"files, each installed by {setup.name}, by every Debian system, or the Rust toolchain")
    return 0


def verdict(candidates, package_of, allowed):
    """None when one of the program's candidates on PATH is provided; otherwise what is wrong."""
    if not candidates:
        return "is not installed on this machine: scripts/setup.sh must install it"
    seen = []
    for path in candidates:
        if path.is_relative_to(TOOLS):
            return None
        package = package_of.get(str(path)) or package_of.get(str(path.resolve()))
        if package in allowed:
            return None
        seen.append(f"{path}: {package or 'no Debian package'}")
    return f"({'; '.join(seen)}) is not installed by scripts/setup.sh: add its package to apt_packages"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
