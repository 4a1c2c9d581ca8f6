"""outcomes/bench/page_state.py in Debian Chromium: the reading of a ForwardMsg that says a run finished."""

from __future__ import annotations

import os

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from outcomes.bench import page_state
from outcomes.bench.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian chromium (apt-get install -y chromium)"
)


def message(**fields) -> list[int]:
    msg = ForwardMsg(hash="0" * 32)
    msg.metadata.delta_path.extend([0, 1])
    for name, value in fields.items():
        if name == "script_finished":
            msg.script_finished = value
        else:
            getattr(msg, name).SetInParent()
    return list(msg.SerializeToString())


def test_a_finished_run_is_read_from_the_forward_msg_bytes():
    from playwright.sync_api import sync_playwright

    cases = {
        "finished": (message(script_finished=ForwardMsg.FINISHED_SUCCESSFULLY), True),
        "fragment": (message(script_finished=ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY), True),
        "stopped for a rerun": (message(script_finished=ForwardMsg.FINISHED_EARLY_FOR_RERUN), False),
        "a delta": (message(delta=True), False),
        "session status": (message(session_status_changed=True), False),
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.add_init_script(page_state.watch())
            page.goto("data:text/html,<p>page</p>")
            read = {
                name: page.evaluate("(b) => window.__scriptFinished(new Uint8Array(b))", data)
                for name, (data, _) in cases.items()
            }
        finally:
            browser.close()
    assert read == {name: expected for name, (_, expected) in cases.items()}
