"""The provisioner's wire contract, carried from its Python definitions to the page and the docs.

`python -m scripts.contract` builds the OpenAPI document the provisioner
serves and writes from it `frontend/src/lib/contract.gen.ts` (the body types,
error codes, close codes and event names the page uses), and writes the
tables of error codes, close codes and gateway events in docs/api.md from
the code. `--check` only says which file is out of date.
tests/services/test_wire_contract.py holds both files to what a running
provisioner serves and what the code says.
"""
