"""Writes or checks generated files: the shared `main` of scripts/gen-*.py.

`outputs` maps each path to the text it must hold. Without arguments every file is written; with `--check`
nothing is written and the exit status is 1 when any file differs from what the generator makes.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def write_or_check(outputs, argv, usage):
    if argv not in ([], ["--check"]):
        print(usage, file=sys.stderr)
        return 2
    generator = pathlib.Path(sys.argv[0]).name
    stale = []
    for path, text in outputs.items():
        name = path.relative_to(ROOT)
        if argv == ["--check"]:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
                print(f"FAIL {name} is not what scripts/{generator} generates; run it", file=sys.stderr)
            else:
                print(f"ok   {name} is what scripts/{generator} generates")
        elif not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {name}")
    return 1 if stale else 0


def dump_yaml(document):
    """YAML with multi-line strings (PromQL, dashboard JSON) as readable literal blocks, keys in given order."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def literal(dumper, value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, literal)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, width=1 << 16)
