"""What every refused command line must look like: the documented exit code and one line on stderr."""


def one_error_line(res, code: int = 2) -> str:
    """The single ``error: ...`` line of a click ``Result`` that exited with ``code`` (no traceback)."""
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == code, (res.exit_code, res.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    return lines[0]
