"""Writes the `figure: ...` lines of a test log (stdin) into a document, between its
`<!-- figures -->` and `<!-- /figures -->` markers, with the date and machine."""

import datetime
import os
import platform
import sys

doc = sys.argv[1]
# A figure may follow libtest's "test name ... " on the same line.
figures = [line.split("figure: ", 1)[1].rstrip() for line in sys.stdin if "figure: " in line]
if not figures:
    sys.exit("no figures in the log: did the tests run?")
text = open(doc, encoding="utf-8").read()
start, end = "<!-- figures -->", "<!-- /figures -->"
if start not in text or end not in text:
    sys.exit(f"{doc} has no {start} ... {end} block")
stamp = f"{datetime.date.today()}, {os.cpu_count()} cores, {platform.machine()}"
block = "\n".join([start, f"Measured {stamp} (`make reliability`):", ""] + [f"- {f}" for f in figures] + [end])
before, rest = text.split(start, 1)
after = rest.split(end, 1)[1]
open(doc, "w", encoding="utf-8").write(before + block + after)
print(f"{doc}: {len(figures)} figures")
