"""Session provisioner: session API, warm pool, WebSocket gateway, backends."""
