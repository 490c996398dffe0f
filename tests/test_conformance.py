"""The conformance suite. The plugin (nnconform.plugin) turns every clause in
specs/, for each of its layers and dtypes, into one parameter of this test; the
parameter id is ``clause-id:layer:dtype``."""


def test_conformance(conformance_item, conformance_runner, conformance_record, conformance_expected_failure):
    conformance_runner.run(conformance_item, conformance_record, shrink=not conformance_expected_failure)
