"""Schema families per resource (base, create, update, public), as in the FastAPI full-stack
template: table models in ``db.models`` extend the bases, the API and the CLI's ``--json``
print the public forms, so a field is written once and both print the same JSON."""
