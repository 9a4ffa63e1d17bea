"""The error tree: one root, builtin bases, clean pickling."""

from __future__ import annotations

import pickle

import pytest

import sparkdist as sd
from sparkdist import errors

BUILTIN_OF = {
    errors.InvalidArgumentError: ValueError,
    errors.ArgumentTypeError: TypeError,
    errors.NotPicklableError: TypeError,
    errors.ComputeContextError: ValueError,
    errors.SessionStoppedError: RuntimeError,
    errors.DataSourceError: ValueError,
    errors.DataNotFoundError: FileNotFoundError,
    errors.SchemaConflictError: ValueError,
    errors.ColumnNotFoundError: KeyError,
    errors.EmptyDataError: ValueError,
    errors.JobError: RuntimeError,
}


@pytest.mark.parametrize(("cls", "builtin"), list(BUILTIN_OF.items()), ids=lambda c: c.__name__)
def test_every_error_is_a_sparkdist_error_and_its_builtin(cls, builtin):
    err = cls("message")
    assert isinstance(err, sd.SparkDistError) and isinstance(err, builtin)
    assert str(err) == "message"  # KeyError subclasses too: no repr() quotes
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls and str(again) == "message"


def test_all_errors_are_exported():
    for name in errors.__all__:
        assert getattr(sd, name) is getattr(errors, name)


def test_job_error_keeps_remote_details_through_pickling():
    err = sd.JobError(
        "f failed", remote_type="KeyError", remote_message="'a'", remote_traceback="Traceback ...", split=3
    )
    again = pickle.loads(pickle.dumps(err))
    assert (again.remote_type, again.remote_message, again.remote_traceback, again.split) == (
        "KeyError",
        "'a'",
        "Traceback ...",
        3,
    )
