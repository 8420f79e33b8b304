#!/usr/bin/env python3
"""The sample's persistent executor child (executor.mode: persistent; docs/executor-protocol.md).

SearchHandler's tasks are grep-style (args: -n -- PATTERN PATH) and it does not change between modes: this child
answers exactly those tasks inside one long-lived process instead of a grep per request. It prints matching lines
as LINE:TEXT and reports exit code 1 for "no match" and 2 for an unreadable file or a bad pattern, like grep.
Patterns are Python regular expressions (the same as grep's for plain words, the sample's requests).
Run by drakkar.persistent.yaml; standard library only.
"""
import json
import re
import sys


def search(args):
    """One grep -n run: (exit code, stdout, stderr)."""
    if "--" not in args or len(args) < args.index("--") + 3:
        return 2, "", "search_child: expected -n -- PATTERN PATH, got %r\n" % (args,)
    split = args.index("--")
    numbered = "-n" in args[:split]
    pattern, path = args[split + 1], args[split + 2]
    try:
        regex = re.compile(pattern)
    except re.error as error:
        return 2, "", "search_child: invalid pattern %r: %s\n" % (pattern, error)
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            found = [("%d:%s" % (n, line) if numbered else line) for n, line in enumerate(lines, 1) if regex.search(line)]
    except OSError as error:
        return 2, "", "search_child: %s: %s\n" % (path, error.strerror)
    found = [line if line.endswith("\n") else line + "\n" for line in found]
    return (0 if found else 1), "".join(found), ""


def main():
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        code, stdout, stderr = search(request["args"])
        frame = {"id": request["id"], "exit_code": code, "stdout": stdout, "stderr": stderr}
        out.write(json.dumps(frame, ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()
    return 0  # stdin closed: the worker asks this process to exit


if __name__ == "__main__":
    sys.exit(main())
