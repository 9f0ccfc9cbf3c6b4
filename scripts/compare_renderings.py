#!/usr/bin/env python3
"""Compares a kustomize rendering with the Helm chart's rendering of the same setup, in substance.

Every object must be in both, equal field by field, after two normalisations:
  - Helm's own labels (helm.sh/chart, app.kubernetes.io/managed-by, instance, version) are dropped;
  - the kustomize Namespace is dropped: the chart installs into a namespace made beforehand
    (`helm install --create-namespace`, or `kubectl create namespace`), as Helm expects.
Prints every difference by object and field path; exits 1 if there is any.

usage: compare_renderings.py KUSTOMIZE_OUTPUT HELM_OUTPUT
"""

import sys

import yaml

HELM_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}


def objects(path, drop_helm_labels):
    found = {}
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        meta = doc.get("metadata", {})
        if drop_helm_labels:
            labels = {k: v for k, v in meta.get("labels", {}).items() if k not in HELM_LABELS}
            meta["labels"] = labels
        key = (doc["kind"], meta.get("namespace", ""), meta["name"])
        if key in found:
            sys.exit(f"{path}: {key} twice")
        found[key] = doc
    return found


def differences(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in b:
                yield f"{path}.{key}: only in kustomize ({a[key]!r})"[:300]
            elif key not in a:
                yield f"{path}.{key}: only in the chart ({b[key]!r})"[:300]
            else:
                yield from differences(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: kustomize {a!r}, chart {b!r}"[:300]


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    kustomize = objects(argv[0], drop_helm_labels=False)
    chart = objects(argv[1], drop_helm_labels=True)
    kustomize = {k: v for k, v in kustomize.items() if k[0] != "Namespace"}
    problems = [f"{' '.join(k)}: only in kustomize" for k in sorted(set(kustomize) - set(chart))]
    problems += [f"{' '.join(k)}: only in the chart" for k in sorted(set(chart) - set(kustomize))]
    for key in sorted(set(kustomize) & set(chart)):
        problems += [f"{' '.join(key)} {d}" for d in differences(kustomize[key], chart[key])]
    for p in problems:
        print(f"     {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
