"""One patient's record for one call: entries indexed by type and code, data hygiene, and the JSON shape of
the elements the rules read."""

from .bundles import resources_of
from .entry import Entry, make_entry
from .origin import Origin
from .patient import Coded, PatientRecord
from .shape import located_type_errors
from .statuses import StatusIn, profile_test, profile_words

__all__ = [
    "Coded",
    "Entry",
    "Origin",
    "PatientRecord",
    "StatusIn",
    "located_type_errors",
    "make_entry",
    "profile_test",
    "profile_words",
    "resources_of",
]
