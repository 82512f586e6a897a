"""Helpers and fakes the test suites share: real servers and clients for them,
polling, fake clocks and drivers, the backend contract, the WebSocket fuzzing
harness. The conftest.py files hold only fixtures and hooks."""
