"""Stand-ins the operator tests share: a task instance that keeps XCom pushes, a store that
counts calls."""

from __future__ import annotations

from typing import Any


class FakeTI:
    """What the operators ask of their task instance outside Airflow: XCom pushes."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class CountingStore:
    """Counts every call a task makes to the store, then passes it on."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return target(*args, **kwargs)

        return counted
