"""Fuzz harnesses (atheris) for every parser of untrusted input; see docs/adr/0014-fuzzing.md."""
