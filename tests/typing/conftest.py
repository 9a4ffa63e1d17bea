"""user_script.py is read by mypy (tests/test_typing.py), never imported: its misuse lines would raise."""

collect_ignore = ["user_script.py"]
