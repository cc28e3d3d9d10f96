#!/usr/bin/env python3
"""Writes sample results into the table between the run-samples markers of
docs/hardware-validation.md: one row per sample and hints mode, one column
per machine and kernel. Only the named column's cells change.

  fill_sample_table.py DOC COLUMN RESULTS

RESULTS has one line per run: "<sample> <hints> <cell text>".
"""
import sys

BEGIN = "<!-- run-samples:begin -->"
END = "<!-- run-samples:end -->"


def split_row(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def join_row(cells):
    return "| " + " | ".join(cells) + " |"


def fill(doc_text, column, results):
    lines = doc_text.split("\n")
    try:
        begin = lines.index(BEGIN)
        end = lines.index(END, begin)
    except ValueError:
        raise SystemExit(f"fill_sample_table: no {BEGIN} ... {END} table in the document")
    header = split_row(lines[begin + 1])
    if column not in header:
        raise SystemExit(f"fill_sample_table: no column '{column}'; columns: {', '.join(header[2:])}")
    index = header.index(column)
    rows = lines[begin + 3:end]
    seen = set()
    for number, line in enumerate(rows):
        cells = split_row(line)
        key = (cells[0].strip("`"), cells[1])
        if key in results:
            cells[index] = results[key]
            seen.add(key)
        rows[number] = join_row(cells)
    for key in results:
        if key not in seen:  # a sample or mode the table did not list yet
            cells = [f"`{key[0]}`", key[1]] + ["not run"] * (len(header) - 2)
            cells[index] = results[key]
            rows.append(join_row(cells))
    return "\n".join(lines[:begin + 3] + rows + lines[end:])


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    doc, column, results_file = sys.argv[1:]
    results = {}
    with open(results_file) as handle:
        for line in handle:
            if line.strip():
                sample, hints, text = line.rstrip("\n").split(" ", 2)
                results[(sample, hints)] = text.replace("|", "/")
    with open(doc) as handle:
        text = handle.read()
    with open(doc, "w") as handle:
        handle.write(fill(text, column, results))


if __name__ == "__main__":
    main()
