"""Pieces shared by the echo server and the provisioner."""
