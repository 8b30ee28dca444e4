"""`cds-service package`: the rules the service would serve, as a FHIR NPM package (`.tgz`) that FHIR tooling
and servers load, and optionally as a transaction Bundle for servers that take one instead."""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from pathlib import Path

import orjson

from ..config import Settings
from ..plans.errors import RuleSetError
from ..plans.package import PackageError, build_package, package_version, tarball, tarball_name, transaction
from .errors import report_problems
from .loaded import rules_in_service

DIST = Path("dist")


def package(args: argparse.Namespace, settings: Settings) -> int:
    try:
        ruleset = rules_in_service(settings)
    except RuleSetError as error:
        return report_problems(error)
    try:
        version = package_version(ruleset.artifacts)
        files = build_package(ruleset.artifacts, version)
    except PackageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    out = Path(args.out or DIST)
    if not args.out or args.out.endswith("/") or out.is_dir():  # a folder: the package's own file name
        out = out / tarball_name(version)
    archive = tarball(files)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(archive)
    bundle = transaction(files)
    kinds = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])
    print(f"wrote {out}: {', '.join(f'{count} {kind}' for kind, count in sorted(kinds.items()))}")
    print(f"sha256 {hashlib.sha256(archive).hexdigest()}")
    if args.bundle:
        target = Path(args.bundle)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {target}: a transaction Bundle of the same {len(bundle['entry'])} resources")
    return 0
