#!/usr/bin/env python3
"""The reference persistent executor child in Python (standard library only); docs/executor-protocol.md.

Under executor.mode: persistent (DRAKKAR_EXECUTOR_PROTOCOL is set) it prints its ready line, then answers one
request per stdin line until stdin ends. In spawn mode it runs the one task its argv names and exits with its code.
Commands (a task's first argument) mirror tests/Drakkar.PersistentChild/Program.cs.
CHILD_STARTUP_MS and CHILD_WORK_MS simulate a costly start-up and per-task work.
"""
import json
import os
import sys
import time


def run(args, stdin, env):
    """The commands both modes share: (exit code, stdout, stderr)."""
    command = args[0] if args else "echo"
    rest = args[1:]
    if command == "work":
        time.sleep(int(os.environ.get("CHILD_WORK_MS", "1")) / 1000)
        return 0, " ".join(rest) + "\n", ""
    if command == "cat":
        return 0, stdin, ""
    if command == "crash-once":
        # dies (as a crash would) unless its marker file exists, which it creates first: a retry succeeds
        if not os.path.exists(args[1]):
            with open(args[1], "w") as marker:
                marker.write("crashed\n")
            os._exit(3)
        return 0, " ".join(args[2:]) + "\n", ""
    if command == "pid":
        return 0, str(os.getpid()), ""
    if command == "env":
        return 0, env.get(args[1], os.environ.get(args[1], "")), ""
    if command == "fail":
        return int(args[1]), "", "failing with %s\n" % args[1]
    return 0, " ".join(rest) + "\n" + stdin, ""


def respond(out, task_id, code, stdout, stderr):
    frame = {"id": task_id, "exit_code": code, "stdout": stdout, "stderr": stderr}
    out.write(json.dumps(frame, ensure_ascii=False).encode("utf-8") + b"\n")
    out.flush()


def serve(inp, out):
    out.write(b'{"ready": true}\n')
    out.flush()
    while True:
        line = inp.readline()
        if not line:
            # stdin closed: the worker wants this process to exit (the file lets a test see it left on its own)
            if os.environ.get("CHILD_GOODBYE_FILE"):
                with open(os.environ["CHILD_GOODBYE_FILE"], "w") as goodbye:
                    goodbye.write("%d\n" % os.getpid())
            return 0
        request = json.loads(line)
        if "stdin_length" in request:
            stdin = inp.read(request["stdin_length"]).decode("utf-8", "replace")
        else:
            stdin = request.get("stdin") or ""
        args, task_id = request["args"], request["id"]
        command = args[0] if args else "echo"
        if command == "crash":
            sys.stderr.write("segfault-like crash while handling %s\n" % task_id)
            sys.stderr.flush()
            os._exit(3)
        elif command == "hang":
            time.sleep(10**6)
        elif command == "bad-frame":
            out.write(b"this is not a frame\n")
            out.flush()
        elif command == "stdin-framing":
            respond(out, task_id, 0, "length-prefixed" if "stdin_length" in request else "json-line", "")
        elif command == "wrong-id":
            respond(out, "someone-else", 0, "", "")
        elif command == "log":
            sys.stderr.write(args[1] + "\n")
            sys.stderr.flush()
            respond(out, task_id, 0, "", "task stderr\n")
        else:
            code, stdout, stderr = run(args, stdin, request.get("env") or {})
            respond(out, task_id, code, stdout, stderr)


def main():
    time.sleep(int(os.environ.get("CHILD_STARTUP_MS", "0")) / 1000)
    if "DRAKKAR_EXECUTOR_PROTOCOL" not in os.environ:
        stdin = sys.stdin.read() if not sys.stdin.isatty() else ""
        code, stdout, stderr = run(sys.argv[1:], stdin, {})
        sys.stdout.write(stdout)
        sys.stderr.write(stderr)
        return code
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
