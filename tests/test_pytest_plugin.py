"""The pytest plugin: every case a test item, failures that read like the report."""

from __future__ import annotations

import textwrap

from optconform.vectors import load_suite

pytest_plugins = ["pytester"]
#: How many cases each init op has (the plugin makes one item per case).
INIT_CASES = sum(case.op == "momentum.init" for case in load_suite())


def test_each_case_is_an_item_and_the_reference_passes(pytester):
    result = pytester.runpytest_subprocess("--optconform-target=optconform.reference",
                                           "--optconform-ops=momentum.init,adam.init", "-v")
    result.assert_outcomes(passed=2 * INIT_CASES)
    result.stdout.fnmatch_lines(["optconform::momentum.init::one-layer-1x1 PASSED*"])
    result.stdout.fnmatch_lines([f"*collected {2 * INIT_CASES} items"])  # never "collected 0 items", then a run


def test_a_buggy_port_fails_with_message_diagnosis_and_why(pytester):
    pytester.makepyfile(buggy_port=textwrap.dedent("""
        import numpy as np
        from optconform.reference import ops

        def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
            # heavy-ball where the course's EMA form is declared
            return ops.momentum_update(parameters, grads, v, beta, learning_rate, "heavy_ball")
    """))
    result = pytester.runpytest_subprocess("--optconform-target=buggy_port", "--optconform-ops=momentum.update",
                                           "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 30 and "passed" not in outcomes or outcomes.get("passed", 0) <= 2
    text = result.stdout.str()
    assert "fail: v.dW1[" in text or "fail: parameters." in text
    assert "likely mistake: heavy-ball momentum" in text  # the mistake's title, not "matches heavy-ball"
    assert "this case exists to catch:" not in text  # beside a named mistake, a case's purpose would contradict it
    assert result.ret == 1


def test_missing_ops_are_skipped_with_the_reason(pytester):
    pytester.makepyfile(partial_port="from optconform.reference import initialize_velocity\n")
    result = pytester.runpytest_subprocess("--optconform-target=partial_port", "--optconform-ops=momentum", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == INIT_CASES and outcomes["skipped"] > 0
    result.stdout.fnmatch_lines(["*momentum.update is not implemented*"])


def test_xfail_file_marks_expected_failures(pytester):
    pytester.makepyfile(bad_init=textwrap.dedent("""
        import numpy as np
        def initialize_velocity(parameters):
            return {"d" + k: np.ones_like(p) for k, p in parameters.items()}
    """))
    xfail = pytester.makefile(".txt", xfail="momentum.init/one-layer*\n")
    result = pytester.runpytest_subprocess("--optconform-target=bad_init", "--optconform-ops=momentum.init",
                                           f"--optconform-xfail={xfail}")
    outcomes = result.parseoutcomes()
    assert outcomes["xfailed"] == 3 and outcomes["failed"] == INIT_CASES - 3


def test_a_target_that_cannot_load_is_a_usage_error(pytester):
    result = pytester.runpytest_subprocess("--optconform-target=no_such_module_here")
    assert result.ret == 4  # pytest's usage error
    result.stderr.fnmatch_lines(["*optconform: no module named 'no_such_module_here'*"])


def test_markers_select_a_family(pytester):
    result = pytester.runpytest_subprocess("--optconform-target=optconform.reference", "-m", "momentum",
                                           "--optconform-ops=momentum.init,adam.init", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=INIT_CASES, deselected=INIT_CASES)


def test_options_can_live_in_the_ini_file(pytester):
    pytester.makeini("""
        [pytest]
        optconform_target = optconform.reference
        optconform_ops = adam.init
        optconform_convention =
            adam.epsilon=outside_sqrt
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=INIT_CASES)


def test_a_target_and_a_cmd_together_are_a_usage_error(pytester):
    result = pytester.runpytest_subprocess("--optconform-target=optconform.reference",
                                           "--optconform-cmd=node port.js")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*not both*"])


def test_a_failing_case_is_rerun_by_its_node_id(pytester):
    pytester.makepyfile(bad_lr=textwrap.dedent("""
        from optconform.reference import ops

        def update_lr(learning_rate0, epoch_num, decay_rate):
            return learning_rate0 / (1 + decay_rate) ** epoch_num  # exponential, not inverse-time
    """))
    first = pytester.runpytest_subprocess("--optconform-target=bad_lr", "--optconform-ops=lr_decay.inverse_time",
                                          "-rf", "-p", "no:cacheprovider")
    failed = [line.split()[1] for line in first.stdout.lines if line.startswith("FAILED ")]
    assert failed and all(node.startswith("optconform::lr_decay.inverse_time::") for node in failed)
    again = pytester.runpytest_subprocess("--optconform-target=bad_lr", failed[0], "-v", "-p", "no:cacheprovider")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines([f"{failed[0]} FAILED*"])
    # a whole op by its collector's id, and a case by optconform:: + its case id
    case_id = failed[0].split("::", 1)[1].replace("::", "/", 1)
    by_case = pytester.runpytest_subprocess("--optconform-target=bad_lr", f"optconform::{case_id}",
                                            "optconform::momentum.init", "-p", "no:cacheprovider")
    by_case.assert_outcomes(failed=1, skipped=INIT_CASES)  # bad_lr has no initialize_velocity


def test_an_unknown_node_id_is_a_usage_error(pytester):
    result = pytester.runpytest_subprocess("--optconform-target=optconform.reference",
                                           "optconform::adam.update::no-such-case")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*no selected case has the node id 'optconform::adam.update::no-such-case'*"])


def test_junitxml_names_each_case_under_its_op(pytester):
    import xml.etree.ElementTree as ET
    from pathlib import Path

    import xmlschema

    result = pytester.runpytest_subprocess("--optconform-target=optconform.reference",
                                           "--optconform-ops=adam.init,lr_decay", "--junitxml=out.xml")
    assert result.ret == 0
    xml_text = (pytester.path / "out.xml").read_text()
    xmlschema.XMLSchema(str(Path(__file__).parent / "schemas" / "junit.xsd")).validate(xml_text)
    cases = list(ET.fromstring(xml_text).iter("testcase"))
    assert {case.get("classname") for case in cases} == {
        "optconform.adam.init", "optconform.lr_decay.inverse_time", "optconform.lr_decay.scheduled"}
    assert any(case.get("name") == "one-layer-1x1" for case in cases)
