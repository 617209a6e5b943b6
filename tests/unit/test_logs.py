"""Log condensation: templates with counts and times, every distinct error and trace, frames mapped."""

from remediate.context.logs import Frame, condense, parse_frame, repo_file_for

TRACKED = ["app/users/service.py", "app/users/worker.py", "src/main/java/com/acme/users/UserService.java",
           "web/src/handlers/users.js", "cmd/server/main.go", "tests/test_service.py", "service.py"]

PYTHON_TRACE = """2026-11-25T03:14:09.120Z ERROR worker crashed
Traceback (most recent call last):
  File "/srv/app/users/worker.py", line 41, in run
    service.process_queue(queue)
  File "/usr/lib/python3.11/threading.py", line 975, in run
    self._target()
  File "/usr/lib/python3.11/threading.py", line 1038, in _bootstrap_inner
    self.run()
  File "/srv/app/users/service.py", line 20, in process_queue
    self._audit_log.append(message)
  File "/srv/app/users/service.py", line 33, in _append
    data.extend(x)
  File "/srv/app/users/service.py", line 40, in _grow
    raise MemoryError()
MemoryError: cannot allocate 1048576 bytes
"""

JAVA_TRACE = """2026-11-25 03:14:11,002 ERROR [main] request failed
java.lang.IllegalStateException: queue closed
\tat com.acme.users.UserService.process(UserService.java:88)
\tat com.acme.users.Worker.run(Worker.java:12)
Caused by: java.io.IOException: broken pipe
\tat java.base/java.io.FileOutputStream.write(FileOutputStream.java:349)
\t... 2 more
"""


def _noise(n: int) -> str:
    return "\n".join(f"2026-11-25T03:{i // 60 % 60:02d}:{i % 60:02d}Z INFO user-service processed update for "
                     f"user u{i % 97} in {3 + i % 11}ms" for i in range(n)) + "\n"


def test_repeated_lines_become_one_template_with_count_and_times():
    out = condense(_noise(500), 10_000)
    assert "[x500] (first 2026-11-25T03:00:00Z, last 2026-11-25T03:08:19Z) INFO user-service processed update " \
           "for user <*> in <*>" in out.text
    assert out.text.count("processed update") == 1 and out.templates == 1
    assert (out.first, out.last, out.lines) == ("2026-11-25T03:00:00Z", "2026-11-25T03:08:19Z", 500)


def test_every_distinct_error_is_kept_and_repeats_are_counted():
    errors = ["2026-11-25T03:00:01Z ERROR payment failed for order 17: card declined",
              "2026-11-25T03:00:02Z ERROR payment failed for order 18: card declined",
              "2026-11-25T03:00:03Z FATAL database connection pool exhausted (max 20)",
              '{"ts": 1, "level": "error", "msg": "cache miss storm"}',
              "2026-11-25T03:00:04Z CRITICAL kubelet OOMKilled container user-service"]
    out = condense(_noise(300) + "\n".join(errors) + "\n" + _noise(300), 4000)
    assert out.errors == 4
    assert "[x2] (first 2026-11-25T03:00:01Z, last 2026-11-25T03:00:02Z) 2026-11-25T03:00:01Z ERROR payment " \
           "failed for order 17: card declined" in out.text
    for kept in ("pool exhausted (max 20)", "cache miss storm", "OOMKilled"):
        assert kept in out.text


def test_a_python_trace_keeps_first_and_last_frames_mapped_to_the_repository():
    out = condense(_noise(200) + PYTHON_TRACE * 3, 10_000, TRACKED)
    assert out.traces == 1 and "[x3] Traceback (most recent call last):" in out.text
    assert '  File "/srv/app/users/worker.py", line 41, in run' in out.text
    assert "    [repository file: app/users/worker.py:41]" in out.text
    assert "  ... 1 frames omitted ..." in out.text
    assert '  File "/srv/app/users/service.py", line 40, in _grow' in out.text and "raise MemoryError()" in out.text
    assert "MemoryError: cannot allocate 1048576 bytes" in out.text
    assert "threading.py\", line 1038" not in out.text  # the middle frame is the one left out
    assert out.repo_files == ("app/users/worker.py", "app/users/service.py")


def test_jvm_traces_with_causes_are_kept_and_mapped_by_package():
    out = condense(_noise(100) + JAVA_TRACE, 10_000, TRACKED)
    assert out.traces == 1
    for line in ("java.lang.IllegalStateException: queue closed", "Caused by: java.io.IOException: broken pipe",
                 "... 2 more", "at com.acme.users.UserService.process(UserService.java:88)"):
        assert line in out.text
    assert "[repository file: src/main/java/com/acme/users/UserService.java:88]" in out.text


def test_frames_of_several_runtimes_are_recognised():
    node = parse_frame("    at handleUser (/srv/web/src/handlers/users.js:42:13)")
    go = parse_frame("\t/go/src/acme/cmd/server/main.go:77 +0x1d")
    assert (node.file, node.line, node.func) == ("/srv/web/src/handlers/users.js", 42, "handleUser")
    assert repo_file_for(node, TRACKED) == "web/src/handlers/users.js"
    assert (go.file, go.line) == ("/go/src/acme/cmd/server/main.go", 77)
    assert repo_file_for(go, TRACKED) == "cmd/server/main.go"
    # A bare file name matches only a file of that name at the top; library paths match nothing.
    assert repo_file_for(Frame("/usr/lib/python3.11/threading.py", 1, "run", ()), TRACKED) is None
    assert repo_file_for(Frame("/opt/lib/other/service.py", 1, "f", ()), TRACKED) is None


def test_traces_differing_only_in_numbers_are_one_signature():
    traces = "".join(PYTHON_TRACE.replace("1048576", str(2 ** i)) for i in range(10, 16))
    out = condense(traces, 10_000, TRACKED)
    assert out.traces == 1 and "[x6] Traceback (most recent call last):" in out.text


def test_the_budget_is_met_errors_first_then_warnings_then_the_most_frequent():
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    rare = "\n".join(f"2026-11-25T04:00:00Z INFO {chr(65 + i % 26)}{chr(65 + i // 26 % 26)}x "
                     + " ".join(words[(i + j) % 10] for j in range(3 + i % 7)) for i in range(400))
    text = _noise(2000) + "2026-11-25T04:00:00Z WARN disk 91% full\n" + rare + "\n" + PYTHON_TRACE
    out = condense(text, 1500, TRACKED)
    assert out.chars_after <= 1500 and out.truncated
    assert "MemoryError: cannot allocate" in out.text and "WARN disk 91% full" in out.text
    assert "[x2000]" in out.text and "rarer templates omitted to fit the log budget" in out.text
    assert out.chars_before == len(text)


def test_when_errors_alone_overflow_traces_shrink_before_anything_is_cut():
    pools = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    traces = "".join(PYTHON_TRACE.replace("cannot allocate", f"cannot allocate in pool {pool}") for pool in pools)
    out = condense(traces, 3200, TRACKED)
    assert out.traces == 6 and not out.text.count("[... errors cut")
    assert out.text.count("MemoryError: cannot allocate in pool ") == 6
    assert out.chars_after <= 3200
