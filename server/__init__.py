"""issue-service: a gRPC port of Sentry's issue update flow."""
