"""Everything the service remembers, in one SQL database shared by all workers and replicas."""

from .database import OUTAGES, Database, alembic_config, head_revision
from .feedback import FeedbackStore
from .issued_cards import IssuedCards
from .keys import PatientKeys
from .quiet import QuietCards, Recent, ShownCard
from .schema import FeedbackRow, IssuedCardRow, SeenTokenRow
from .tokens import SeenTokens

__all__ = [
    "OUTAGES",
    "Database",
    "FeedbackRow",
    "FeedbackStore",
    "IssuedCardRow",
    "IssuedCards",
    "PatientKeys",
    "QuietCards",
    "Recent",
    "SeenTokenRow",
    "SeenTokens",
    "ShownCard",
    "alembic_config",
    "head_revision",
]
