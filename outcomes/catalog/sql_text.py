"""Reading SQL text without running it: `$name` parameters, the `--` header block, identifiers."""

from __future__ import annotations

import re


def named_parameters(sql: str) -> list[str]:
    """Names of `$name` parameters in SQL, in order of first use, skipping comments, strings and quoted names."""
    names: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:  # block comments nest
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote is an escaped quote
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif ch == "$":
            tag = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if tag:  # dollar-quoted string: $$...$$ or $tag$...$tag$
                end = sql.find(tag.group(0), i + len(tag.group(0)))
                i = n if end < 0 else end + len(tag.group(0))
                continue
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql[i:])
            if m:
                if m.group(1) not in names:
                    names.append(m.group(1))
                i += len(m.group(0))
            else:
                i += 1
        elif ch in "eE" and sql.startswith("'", i + 1):
            j = i + 2  # escape string E'...': a backslash or a doubled quote escapes
            while j < n and (sql[j] != "'" or sql.startswith("''", j)):
                j += 2 if sql[j] == "\\" or sql[j] == "'" else 1
            i = j + 1
        elif ch.isalnum() or ch == "_":
            # an identifier such as a$b is one word, not a parameter
            m = re.match(r"[\w$]+", sql[i:])
            i += len(m.group(0))
        else:
            i += 1
    return names


def split_header(text: str) -> tuple[str, str]:
    """Split a file into its leading `--` comment block (prefix removed) and the SQL after it."""
    lines = text.splitlines(keepends=True)
    header = []
    for k, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("--"):
            body = stripped[2:]
            header.append(body[1:] if body.startswith(" ") else body)
        elif stripped == "" and not header:
            continue
        else:
            return "\n".join(header), "".join(lines[k:])
    return "\n".join(header), ""


def words(sql: str) -> set[str]:
    """Lower-cased identifiers of `sql`, outside comments and string literals."""
    code = re.sub(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", " ", sql, flags=re.S)
    return {w.lower().strip('"') for w in re.findall(r'"[^"]+"|[A-Za-z_][A-Za-z0-9_]*', code)}
