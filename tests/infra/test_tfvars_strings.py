"""Strings written into .tfvars are read back by terraform exactly as written: HCL would
expand ``${...}`` and ``%{...}`` as templates, so they are escaped."""

from __future__ import annotations

from engagements.infra.iac import Map, hcl, hcl_string


def test_template_sequences_are_escaped():
    assert hcl_string("a ${var.x} and %{ if true }b%{ endif }") == (
        '"a $${var.x} and %%{ if true }b%%{ endif }"'
    )


def test_quotes_backslashes_newlines_and_unicode():
    assert hcl_string('say "hi"\\ \n é') == '"say \\"hi\\"\\\\ \\n é"'


def test_values_and_map_keys_in_a_document_are_escaped():
    text = hcl([("labels", Map({"${k}": "%{v}"})), ("names", ["${a}", "b"])])
    assert text == 'labels = { "$${k}" = "%%{v}" }\nnames  = ["$${a}", "b"]\n'
