"""The worker refuses to start on a Faust or aiokafka its runtime fixes were not made for."""

import pytest

from streams.runtime.faust_fixes import PINNED, RuntimeMismatch, check_runtime


def test_the_installed_runtime_is_the_pinned_one() -> None:
    check_runtime()  # the environment `make install` builds


def test_another_faust_release_is_refused_with_what_to_do() -> None:
    with pytest.raises(RuntimeMismatch) as refused:
        check_runtime({**PINNED, "faust-streaming": "0.16.0"})
    message = str(refused.value)
    assert "faust-streaming 0.16.0 is installed, 0.15.3 is required" in message
    assert "make install" in message


def test_an_attribute_the_fixes_patch_that_is_gone_is_refused() -> None:
    class Consumer:
        def ack(self) -> None: ...

    touched = (("faust Consumer", Consumer, "ack"), ("faust Consumer", Consumer, "perform_seek"))
    with pytest.raises(RuntimeMismatch, match=r"faust Consumer\.perform_seek is missing"):
        check_runtime(dict(PINNED), touched)
