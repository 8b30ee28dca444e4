"""Plan definitions: load and check the FHIR JSON, compile its JSON-Logic, evaluate it into cards."""
