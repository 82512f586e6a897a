"""WebSocket echo server: one per session pod, answers pings with pongs."""
