"""Pull commands: run in order, output kept, time limits enforced on the whole process group."""

from __future__ import annotations

import os
import time

from analytics_ingest.weblogs.rsync import KEEP_OUTPUT, PullResult, run_pull_commands


def test_commands_run_in_order_and_failures_are_reported_not_raised(tmp_path):
    marker = tmp_path / "order.txt"
    ok, failing, missing = run_pull_commands(
        [f"echo first >> {marker}; echo done", f"echo second >> {marker}; echo 'rsync: connection refused' >&2; exit 3",
         "no-such-command-here --now"],
        timeout=10,
    )
    assert marker.read_text() == "first\nsecond\n"
    assert ok.returncode == 0 and ok.output == "done\n" and not ok.timed_out and ok.seconds < 5
    assert failing == PullResult(failing.command, 3, failing.seconds, "rsync: connection refused\n", False)
    assert missing.returncode == 127 and "not found" in missing.output
    assert run_pull_commands([]) == []


def test_a_command_over_its_time_is_killed_quickly_with_its_children(tmp_path):
    started = time.monotonic()
    (slow,) = run_pull_commands(["echo started; sleep 30"], timeout=0.5)
    assert time.monotonic() - started < 5
    assert slow.timed_out and slow.returncode is None and slow.seconds < 5
    assert slow.output.startswith("started\n") and "timed out after 0.5 s" in slow.output
    # A child left running in the background (holding the output pipe) is killed too.
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    (background,) = run_pull_commands([f"sleep 30 & echo $! > {pid_file}; echo bye"], timeout=0.5)
    assert time.monotonic() - started < 5 and background.timed_out and background.output.startswith("bye\n")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_secrets_stay_unexpanded_in_the_result_and_masked_in_the_output():
    (result,) = run_pull_commands(['echo "pulling as ${PULL_USER} with ${PULL_PASSWORD}"'],
                                  env={"PULL_USER": "abc", "PULL_PASSWORD": "t0p-s3cret-pw"})
    assert result.command == 'echo "pulling as ${PULL_USER} with ${PULL_PASSWORD}"'
    assert result.output == "pulling as abc with ***\n"  # short values are not masked
    assert "PULL_PASSWORD" not in os.environ  # env is added for the commands only


def test_only_the_end_of_a_long_output_is_kept():
    (chatty,) = run_pull_commands(["seq 1 200000; echo the-end"], timeout=10)
    assert chatty.returncode == 0 and len(chatty.output) == KEEP_OUTPUT
    assert chatty.output.endswith("199999\n200000\nthe-end\n")
