"""Unit tests of the services: pure rules, the pool core and its adapter over fakes,
the watch-cache views. No socket, no server process, no cluster."""
