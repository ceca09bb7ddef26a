"""The sweep's planning: which runs each protocol needs and how each is launched."""
