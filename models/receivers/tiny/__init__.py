"""The embedded default receiver: a small metadata-conditioned 4x SR network shipped with the pack."""
