"""Questionnaires: a completed QuestionnaireResponse turned into the resources the rules read (SDC
`$extract`)."""
