#!/usr/bin/env python3
"""Validates every CiliumNetworkPolicy in the given YAML files against the vendored excerpt of Cilium's CRD schema
(tests/fixtures/policy/crds/ciliumnetworkpolicy_v2.excerpt.json; its $comment names the source). Strict: a field
the schema does not declare fails (the API server would prune it silently). `format: cidr` is checked with
Python's ipaddress. Prints `ok   CiliumNetworkPolicy ns/name` per object; exits 1 on any failure, 2 on bad usage.
Needs PyYAML and jsonschema (kubernetes-validate depends on it; scripts/requirements.txt)."""
import ipaddress
import json
import pathlib
import sys

import jsonschema
import yaml

SCHEMA = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/policy/crds/ciliumnetworkpolicy_v2.excerpt.json"


def is_cidr(value):
    if not isinstance(value, str):
        return True
    try:
        ipaddress.ip_network(value, strict=False)
        return "/" in value
    except ValueError:
        return False


def main(paths):
    if not paths:
        print("usage: validate-cilium.py FILE.yaml...", file=sys.stderr)
        return 2
    checker = jsonschema.FormatChecker()
    checker.checks("cidr")(is_cidr)
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()), format_checker=checker)
    failed = 0
    for path in paths:
        for doc in yaml.safe_load_all(open(path)):
            if not doc:
                continue
            where = f"{doc.get('kind')} {doc.get('metadata', {}).get('namespace')}/{doc.get('metadata', {}).get('name')}"
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
            if errors:
                failed += 1
                for error in errors:
                    print(f"FAIL {where} ({path}): {'.'.join(map(str, error.path))}: {error.message}", file=sys.stderr)
            else:
                print(f"ok   {where}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
