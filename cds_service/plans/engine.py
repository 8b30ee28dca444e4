"""The engine plan definitions compile with: three-valued operators plus the FHIR vocabulary."""

from __future__ import annotations

from ..logic import Engine
from .kleene import clinical_operations
from .vocabulary import Vocabulary


def clinical_engine(vocabulary: Vocabulary) -> Engine:
    """An engine whose every operator is three-valued and compiles to Python (see `kleene`)."""
    return Engine(operations=clinical_operations(vocabulary.operations()))
