#!/usr/bin/env python3
"""Validates generated texts against their JSON schemas with Python's jsonschema (an independent validator, not the
code under test), for the schema property test (ConstraintScaleTests).

Usage: validate_json.py CASES.json  (run with llama-cpp-python's Python, where setup.sh --llama-cpp installs
jsonschema)

CASES: a JSON list of {"schema": {...}, "text": "..."}. Prints a JSON list with, for each case, null when the text
parses as JSON and validates (under the schema's own draft, 2020-12 when it names none), else a one-line reason.
"""
import json, sys

import jsonschema


def check(schema, text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return f"not JSON: {e}"
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = sorted(cls(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        return f"at {'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
    return None


cases = json.load(open(sys.argv[1]))
json.dump([check(c["schema"], c["text"]) for c in cases], sys.stdout)
