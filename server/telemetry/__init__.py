"""Logs, metrics and traces: no grpc here; the transport's interceptor feeds them."""
