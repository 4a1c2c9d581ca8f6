"""The bench's eyes in the page: scripts Chromium runs to tell when a Streamlit page is drawn after an action.

`watch()` goes in every browser context (Playwright's init script); `RESET` before an action; `DRAWN` is waited
for; `PENDING` says what a page that never got drawn still lacked.
"""

from __future__ import annotations

# Marks each run of the script: set when the app reports running, cleared by the bench before an action. A
# busy browser may deliver "running" and "notRunning" in one batch, so the records' old values count too: a
# quick run must not go unseen (the bench would then wait for it forever). React may still draw a quick run's
# start and end in one commit, and then the app never shows "running": so the server's own word that a run
# finished (a ForwardMsg with script_finished, read off the app's WebSocket) counts as well, once the page has
# had FINISH_MS to draw what the run sent. Counting the page's own mutations as a run settled some visits before
# their sidebar was drawn, so they do not count.
FINISH_MS = 100
WATCH = """
window.__ran = false;
window.__runs = 0;
window.__finished = 0;
window.__finishes = 0;
new MutationObserver((records) => {
  for (const r of records)
    if (r.attributeName === 'data-test-script-state' && r.oldValue === 'running') {
      window.__ran = true;
      window.__runs += 1;
    }
  const app = document.querySelector('[data-testid="stApp"]');
  if (app && app.getAttribute('data-test-script-state') === 'running') window.__ran = true;
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state'],
  attributeOldValue: true, childList: true});
// whether a ForwardMsg's bytes report a whole run finished (script_finished: successfully, or a fragment's)
const finished = (bytes) => {
  let i = 0;
  const varint = () => {
    let value = 0, shift = 0, b;
    do { b = bytes[i++]; value += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80 && i < bytes.length);
    return value;
  };
  while (i < bytes.length) {
    const tag = varint(), field = Math.floor(tag / 8), wire = tag % 8;
    if (wire === 0) {
      const value = varint();
      if (field === FIELD) return DONE.includes(value);
    } else if (wire === 2) {
      const length = varint();  // read before i is: `i += varint()` would add to i's old value
      i += length;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return false;
  }
  return false;
};
window.__scriptFinished = finished;  // for tests/test_page_state.py
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (event) => {
      if (event.data instanceof ArrayBuffer && finished(new Uint8Array(event.data))) {
        window.__finished = performance.now();
        window.__finishes += 1;
      }
    });
  }
};
"""


def watch() -> str:
    """WATCH with the field number and finished values of script_finished in the installed Streamlit."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    field = ForwardMsg.DESCRIPTOR.fields_by_name["script_finished"]
    done = [ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY]
    return f"(() => {{ const FIELD = {field.number}, DONE = {done}; window.__finishMs = {FINISH_MS};{WATCH}}})();"


RESET = "window.__ran = false; window.__finished = 0"  # before an action: runs seen before it do not count
# What the page still lacks before it counts as drawn ([] once drawn). A run that ended showing an exception
# counts as drawn: there is nothing more to wait for, and the exception is reported as a problem.
LACKING = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const state = app && app.getAttribute('data-test-script-state');
  const lacking = [];
  const told = window.__finished && performance.now() - window.__finished > window.__finishMs;
  if (!window.__ran && !told) lacking.push('a run since the action');
  if (state !== 'notRunning') lacking.push(`script state ${state}`);
  const stale = document.querySelectorAll('[data-stale="true"]').length;
  if (stale) lacking.push(`${stale} stale elements`);
  if (lacking.length || document.querySelector('[data-testid="stException"]')) return lacking;
  if (!document.querySelector('[data-testid="stMainBlockContainer"] h1')) lacking.push('the title');
  const undrawn = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(
    (c) => c.offsetParent !== null && !c.querySelector('.js-plotly-plot .main-svg')).length;
  if (undrawn) lacking.push(`${undrawn} charts`);
  return lacking;
}"""
DRAWN = f"() => ({LACKING})().length === 0"
# Told when the wait for DRAWN times out
PENDING = f"""() => JSON.stringify({{
  lacking: ({LACKING})(), url: location.href, runs: window.__runs, finished: window.__finishes,
  connection: document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-connection-state'),
  main: (document.querySelector('[data-testid="stMainBlockContainer"]') || document.body).innerText.slice(0, 300),
}})"""
