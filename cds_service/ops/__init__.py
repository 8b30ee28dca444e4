"""Operations: metrics, logs and the request id that ties one call's log lines together."""
