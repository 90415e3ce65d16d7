"""Connection errors mask the credential where it stands as one, never the password's letters inside
other words: a short or common password must not rewrite a message, or say which letters it holds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loupe.connectors import ConnectionSpec, masked_credentials, scrubbed

# A short one, one letter, a common word, letters of common words, and regex metacharacters.
PASSWORDS = ["x", "e", "xis", "exist", "database", "a.b*c+(d)[e]?^$|\\1"]
ORDINARY = [
    'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "loupe_x" does not exist',
    "(1045, \"Access denied for user 'reader'@'localhost' (using password: YES)\")",
    "Catalog Error: Table with name xis does not exist!",
    'relation "database" does not exist',
]


def spec(password: str, user: str = "reader") -> ConnectionSpec:
    return ConnectionSpec(type="postgres", host="db.example.com", port=5432, user=user, password=password)


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("message", ORDINARY)
def test_ordinary_text_is_never_rewritten(password: str, message: str) -> None:
    assert scrubbed(RuntimeError(message), spec(password)) == message


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("invalid: host=db password={p} dbname=shop", "invalid: host=db password=**** dbname=shop"),
        ("dsn: PASSWORD = '{p}' port=5432", "dsn: PASSWORD = **** port=5432"),
        ('options {{db_password="{p}"}}', "options {db_password=****}"),
        ("read password: '{p}' from the file", "read password: **** from the file"),
        (
            "cannot reach postgresql://reader:{p}@db.example.com/x",
            "cannot reach postgresql://reader:****@db.example.com/x",
        ),
        ("reader:{p}@db.example.com refused", "reader:****@db.example.com refused"),
    ],
)
def test_the_credential_is_masked_where_it_stands(password: str, template: str, expected: str) -> None:
    # The quoted form escapes what a quote would end; the others are as a driver would echo them.
    quoted = password.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    message = template.format(p=quoted if "'{p}'" in template or '"{p}"' in template else password)
    assert scrubbed(RuntimeError(message), spec(password)) == expected


def test_a_password_in_a_url_is_masked_whoever_the_user_is() -> None:
    text = "mysql://other:pa@ss@h:3306/d and postgres://:only@h/d"
    assert masked_credentials(text) == "mysql://other:****@h:3306/d and postgres://:****@h/d"


def test_the_user_name_counts_only_as_a_whole_name() -> None:
    # "ader:" is the tail of another name, not the user's.
    assert masked_credentials("leader:kept@h", "ader") == "leader:kept@h"
    assert masked_credentials("ader:gone@h", "ader") == "ader:****@h"


def test_only_the_first_line_is_kept_and_it_is_short() -> None:
    message = scrubbed(RuntimeError("x" * 500 + "\nsecond line password=abc"), spec("abc"))
    assert message == "x" * 300


@given(password=st.text(min_size=1, max_size=12), word=st.text(min_size=0, max_size=40))
def test_what_is_masked_does_not_depend_on_the_password(password: str, word: str) -> None:
    """Masking is decided by where a value stands, so text chosen by a caller learns nothing of it."""
    message = f'relation "{word}" does not exist'
    assert scrubbed(RuntimeError(message), spec(password)) == scrubbed(RuntimeError(message), spec("other"))
