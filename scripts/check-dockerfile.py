#!/usr/bin/env python3
"""Checks the Dockerfile by running its build steps here, without Docker.

This machine (and CI) cannot run `docker build`, so the Dockerfile is parsed and each step is
either executed or checked against the same Debian release:

  1. Structure: a `build` stage and a Debian slim runtime stage; the toolchain and Debian release
     named by the ARGs are the ones on this machine (so steps 3-5 are the same build).
  2. apt-get install lines of both stages: every package exists in this release (apt-cache).
     They are not run (that would change the host); the build stage's are checked installed.
  3. The build context: the repository minus the .dockerignore patterns, copied to a temp dir,
     so a file the build needs but the context leaves out fails the build.
  4. The build stage's RUN steps other than apt-get, executed verbatim in that copy (`/src` is the
     copy, `/out` a temp dir, the `target` cache mount is this worktree's target/ so a re-run is
     incremental; the BuildKit `--mount` flags are dropped).
  5. The runtime stage: every shared library the built binaries load (ldd) belongs to a package
     of the runtime image: the base image's or the closure of its apt-get install line. The
     ENTRYPOINT is a copied binary, both binaries run `--help`, and EXPOSE is the DaemonSet port.
Not checked: pulling the base images and the image layers themselves.

usage: check-dockerfile.py      (CHECK_DOCKERFILE_BUILD=0 skips steps 3-5: no cargo build)
Exit 0 when all pass, 1 on a failed check, 2 when a tool is missing.
"""

import fnmatch
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Packages debian:<release>-slim already contains that a Rust binary may link against.
SLIM_BASE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}

failures = []


def fail(message):
    failures.append(f"FAIL {message}")


def ok(message):
    print(f"ok   {message}")


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def parse(path):
    """Dockerfile -> (global ARG defaults, [stage dict]). Handles continuations and comments."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    args, stages = {}, []
    for line in lines:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif op == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), rest.split()[0])
            name = rest.split()[2] if len(rest.split()) == 3 and rest.split()[1].upper() == "AS" else None
            stages.append({"image": image, "name": name, "steps": []})
        elif stages:
            stages[-1]["steps"].append((op, rest.strip()))
    return args, stages


def apt_packages(stage):
    packages = []
    for op, rest in stage["steps"]:
        if op == "RUN":
            for command in re.split(r"&&|;", rest):
                words = shlex.split(command)
                if words[:2] == ["apt-get", "install"]:
                    packages += [w for w in words[2:] if not w.startswith("-")]
    return packages


def check_structure(args, stages):
    build = next((s for s in stages if s["name"] == "build"), None)
    runtime = stages[-1] if stages else None
    if not build or len(stages) < 2:
        fail("Dockerfile needs a stage named `build` and a separate runtime stage")
        return None, None
    release = run(["sh", "-c", ". /etc/os-release; echo $VERSION_CODENAME"]).stdout.strip()
    if args.get("DEBIAN_RELEASE") != release:
        fail(f"ARG DEBIAN_RELEASE={args.get('DEBIAN_RELEASE')} but this machine is {release}: the checks would not apply")
    rustc = re.search(r"rustc (\d+\.\d+)", run(["rustc", "--version"]).stdout)
    if not rustc or args.get("RUST_VERSION") != rustc.group(1):
        fail(f"ARG RUST_VERSION={args.get('RUST_VERSION')} but this machine's rustc is {rustc and rustc.group(1)}")
    if runtime["image"] != f"debian:{release}-slim":
        fail(f"runtime stage is {runtime['image']}, expected debian:{release}-slim")
    if any(op == "RUN" and "cargo" in rest for op, rest in runtime["steps"]):
        fail("the runtime stage must not build")
    if not any(op == "RUN" and "cargo build --release --locked --bins" in rest for op, rest in build["steps"]):
        fail("the build stage must run `cargo build --release --locked --bins`")
    ok(f"stages: build from {build['image']}, runtime from {runtime['image']}")
    return build, runtime


def check_apt(build, runtime):
    for stage, installed_here in ((build, True), (runtime, False)):
        for package in apt_packages(stage):
            if run(["apt-cache", "show", "--no-all-versions", package]).returncode != 0:
                fail(f"apt package {package!r} ({stage['image']}) not found; run `apt-get update` if lists are empty")
            elif installed_here and run(["dpkg", "-s", package]).returncode != 0:
                fail(f"build package {package!r} is not installed here; the emulated build needs it")
            else:
                ok(f"apt package {package} exists" + (" and is installed" if installed_here else ""))


def ignore_patterns():
    path = ROOT / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    patterns = [l.strip().rstrip("/") for l in lines if l.strip() and not l.startswith("#")]
    if any(p.startswith("!") for p in patterns):
        sys.exit("check-dockerfile: .dockerignore exceptions (!) are not supported by this check")
    return patterns


def build_context(dest):
    patterns = ignore_patterns()

    def ignored(rel):
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(fnmatch.fnmatch(p, pat) for p in prefixes for pat in patterns)

    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = [d for d in dirnames if not ignored(os.path.normpath(os.path.join(rel_dir, d)))]
        # Like docker, copy symlinks as links (os.walk lists links to directories without entering them).
        filenames += [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if not ignored(rel):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel, follow_symlinks=False)


def run_build_stage(build, tmp):
    context, out = tmp / "src", tmp / "out"
    context.mkdir()
    build_context(context)
    ok(f"build context: {sum(1 for _ in context.rglob('*') if _.is_file())} files after .dockerignore")
    (ROOT / "target").mkdir(exist_ok=True)
    (context / "target").symlink_to(ROOT / "target")
    for op, rest in build["steps"]:
        if op != "RUN" or "apt-get" in rest:
            continue
        command = re.sub(r"--mount=\S+\s*", "", rest).replace("/out", str(out))
        print(f"run  {command}", flush=True)
        done = subprocess.run(["bash", "-ec", command], cwd=context)
        if done.returncode != 0:
            fail(f"build step failed ({done.returncode}): {command}")
            return None
    return out


def dependency_closure(packages):
    closure = set(SLIM_BASE) | set(packages)
    for package in packages:
        done = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                    "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", package])
        closure |= {l.strip() for l in done.stdout.splitlines() if l and not l.startswith(" ")}
        closure |= {l.split(":", 1)[1].strip() for l in done.stdout.splitlines() if "Depends:" in l}
    return {p.strip("<>").split(":")[0] for p in closure}


def check_runtime(runtime, out):
    available = dependency_closure(apt_packages(runtime))
    binaries = sorted(p for p in out.iterdir() if p.is_file())
    for binary in binaries:
        ldd = run(["ldd", str(binary)]).stdout
        for line in ldd.splitlines():
            if "not found" in line:
                fail(f"{binary.name}: {line.strip()}")
            match = re.search(r"=>\s+(/\S+)", line)
            if not match:
                continue
            owner = run(["dpkg", "-S", os.path.realpath(match.group(1))]).stdout or run(["dpkg", "-S", match.group(1)]).stdout
            package = owner.split(":")[0].strip() if owner else None
            if package not in available:
                fail(f"{binary.name} loads {match.group(1)} from package {package}, which the runtime image does not install")
        ok(f"{binary.name}: every shared library comes from the runtime image's packages")
        done = run([str(binary), "--help"])
        if done.returncode != 0:
            fail(f"{binary.name} --help exited {done.returncode}: {done.stderr.strip()}")
        else:
            ok(f"{binary.name} --help runs")
    steps = dict(runtime["steps"])
    entry = yaml.safe_load(steps.get("ENTRYPOINT", "[]"))
    copied = {f"/usr/local/bin/{b.name}" for b in binaries}
    if not entry or entry[0] not in copied:
        fail(f"ENTRYPOINT {entry} is not one of the copied binaries {sorted(copied)}")


def check_port(runtime):
    daemonset = yaml.safe_load((ROOT / "deploy" / "base" / "daemonset.yaml").read_text())
    ports = {p["containerPort"] for c in daemonset["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    exposed = {int(rest.split("/")[0]) for op, rest in runtime["steps"] if op == "EXPOSE"}
    if exposed != ports:
        fail(f"EXPOSE {sorted(exposed)} differs from the DaemonSet's ports {sorted(ports)}")
    else:
        ok(f"EXPOSE {sorted(exposed)} matches the DaemonSet")


def main():
    for tool in ("apt-cache", "dpkg", "ldd", "cargo", "rustc"):
        if not shutil.which(tool):
            print(f"check-dockerfile: {tool} is not installed", file=sys.stderr)
            return 2
    args, stages = parse(ROOT / "Dockerfile")
    build, runtime = check_structure(args, stages)
    if build:
        check_apt(build, runtime)
        check_port(runtime)
        if os.environ.get("CHECK_DOCKERFILE_BUILD", "1") != "0" and not failures:
            with tempfile.TemporaryDirectory() as tmp:
                out = run_build_stage(build, pathlib.Path(tmp))
                if out:
                    check_runtime(runtime, out)
    for line in failures:
        print(line, file=sys.stderr)
    if failures:
        print("check-dockerfile: FAILED", file=sys.stderr)
        return 1
    print("check-dockerfile: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
