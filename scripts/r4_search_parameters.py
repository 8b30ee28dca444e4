"""Regenerate cds_service/plans/r4_search_parameters.json: the search parameter codes FHIR R4 defines for
each resource type, from the official search-parameters.json that HAPI's R4 validation resources ship.

Run after the HAPI version changes: ``.venv/bin/python scripts/r4_search_parameters.py [JAR]`` (default:
the jar in the local Maven repository, which ``scripts/hapi.sh`` fills).
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "cds_service" / "plans" / "r4_search_parameters.json"
ENTRY = "org/hl7/fhir/r4/model/sp/search-parameters.json"


def default_jar() -> Path:
    found = sorted(
        (Path.home() / ".m2/repository/ca/uhn/hapi/fhir/hapi-fhir-validation-resources-r4").glob("*/*.jar")
    )
    if not found:
        raise SystemExit("no hapi-fhir-validation-resources-r4 jar in ~/.m2; run scripts/hapi.sh start once")
    return found[-1]


def main(argv: list[str]) -> None:
    jar = Path(argv[0]) if argv else default_jar()
    with zipfile.ZipFile(jar) as archive:
        bundle = json.loads(archive.read(ENTRY))
    codes: dict[str, set[str]] = {}
    for entry in bundle["entry"]:
        parameter = entry["resource"]
        for base in parameter.get("base", ()):
            codes.setdefault(base, set()).add(parameter["code"])
    data = {base: sorted(names) for base, names in sorted(codes.items())}
    TARGET.write_text(json.dumps({"source": f"{jar.name}:{ENTRY}", "parameters": data}, indent=0) + "\n")
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(data)} resource types")


if __name__ == "__main__":
    main(sys.argv[1:])
