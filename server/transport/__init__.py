"""gRPC transport: server factory, servicer, converters, status mapping, auth, observability."""
