"""`with Thing() as thing:` for the test harness's namespaces, boxes and labs: `open()` builds it, and a
failure part-way through closes what was already built, as leaving the block does."""

from __future__ import annotations

from typing import TypeVar

S = TypeVar("S", bound="Scoped")


class Scoped:
    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: S) -> S:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
