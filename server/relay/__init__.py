"""The relay: committed outbox events to NATS JetStream, in order, exactly once in the stream."""
