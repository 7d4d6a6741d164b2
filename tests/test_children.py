"""The one isolation primitive (validators.children): a pool that owns the forkserver and what it
preloads, and children that answer requests, die or hang without taking graphmint with them.

The pool's checks run in a process of their own: multiprocessing has one forkserver per process, and
this one's belongs to the tests that share it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

WORK = textwrap.dedent(
    """
    import os, sys, time

    def loaded(name):
        return name in sys.modules

    def chatty():
        os.write(1, b"printed by native code\\n")
        return os.getpid()

    def fails():
        raise KeyError("no such tensor")

    def sleeps():
        time.sleep(60)
    """
)

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from graphmint.validators.children import ChildError, ChildPool

    # two stand-in "frameworks" of small standard modules, so the forkserver starts fast
    pool = ChildPool(base=("graphmint.validators._lifeline",),
                     frameworks={"fw_a": ("xml.dom.minidom",), "fw_b": ("http.cookiejar",)})
    facts = {}
    pool.start(["fw_a"])
    facts["first"] = [pool.call(work.loaded, m, name="probe") for m in ("xml.dom.minidom", "http.cookiejar")]
    with pool.spawn(work._Host, name="busy") as busy:
        pool.start(["fw_b"])  # a child runs: the forkserver keeps what it preloads
        facts["while_busy"] = [sorted(pool.preloaded), pool.restarts]
    child = pool.spawn(work._Host, name="host")  # none ran in between: this start restarts it
    facts["restarted"] = [sorted(pool.preloaded), pool.restarts, child.request("loaded", "http.cookiejar")]
    child.stop()
    with pool.spawn(work._Host, name="host") as child:
        pid = child.request("chatty")
    facts["log"] = [pid == child.pid, child.log]
    for fn, limit in ((work.fails, None), (work.sleeps, 1.0)):
        try:
            pool.call(fn, name=fn.__name__, timeout_s=limit)
        except ChildError as exc:
            facts[fn.__name__] = [exc.kind, exc.exc_type, str(exc)]
    # killed from outside, as the kernel's OOM killer kills: the child, then the forkserver itself
    import os, signal, time
    from multiprocessing import forkserver
    with pool.spawn(work._Host, name="victim") as victim:
        os.kill(victim.request("chatty"), signal.SIGKILL)
        try:
            victim.request("chatty")
        except ChildError as exc:
            facts["killed"] = [exc.kind, str(exc)]
    with pool.spawn(work._Host, name="orphan") as orphan:
        orphan.request("chatty")
        os.kill(forkserver._forkserver._forkserver_pid, signal.SIGKILL)
        time.sleep(0.5)
        try:
            orphan.request("chatty")
        except ChildError as exc:
            facts["orphaned"] = [exc.kind, str(exc)]
    os.kill(forkserver._forkserver._forkserver_pid, signal.SIGKILL)  # and at once a child starts
    facts["after_forkserver"] = pool.call(work.loaded, "xml.dom.minidom", name="after")
    facts["running"] = len(pool.running)
    print(json.dumps(facts))
    """
)


def test_the_pool_preloads_what_is_asked_and_children_report_how_they_ended(tmp_path: Path) -> None:
    """Preloading and restarts, a child's output, an error, a hang, a child killed by SIGKILL, one lost
    with its forkserver, and a forkserver killed from outside that starts again for the next child."""
    (tmp_path / "work.py").write_text(
        WORK + "\nclass _Host:\n    loaded = staticmethod(loaded)\n    chatty = staticmethod(chatty)\n"
    )
    script = "import work\n" + SCRIPT
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts["first"] == [True, False]  # fw_a preloaded in the forkserver, fw_b not
    assert facts["while_busy"] == [["fw_a"], 0]
    assert facts["restarted"] == [["fw_a", "fw_b"], 1, True]
    same_pid, log = facts["log"]
    assert same_pid and log == "printed by native code\n"
    kind, exc_type, message = facts["fails"]
    assert (kind, exc_type) == ("error", "KeyError") and "KeyError: 'no such tensor'" in message
    kind, _, message = facts["sleeps"]
    assert kind == "timeout" and "sleeps in child process" in message and "within 1s" in message
    kind, message = facts["killed"]
    assert kind == "died" and "SIGKILL" in message and "out of memory?" in message
    kind, message = facts["orphaned"]  # its forkserver killed, the child went with it: named so
    assert kind == "died" and "with the forkserver that forked it" in message, message
    assert facts["after_forkserver"] is True  # a forkserver killed from outside starts again
    assert facts["running"] == 0
