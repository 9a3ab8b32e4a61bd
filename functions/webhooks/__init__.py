"""The webhook and event path: the jobs table stream -> EventBridge and the attempts queue -> receivers."""
