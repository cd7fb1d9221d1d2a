"""One live message, executed once for each viewer's identical subscriptions.

A notification published to a user reaches every connection they hold (a phone, a laptop, a
thousand in bench/subscriptions.py). Each connection's subscription would otherwise decode the
message and execute its document over it alone, though the answer is the same for all of them:
same document, same variables, same viewer, same event. So a message is decoded once per
process (``shared_payload``: every listener yields the same object), and the first of those
identical executions is remembered for the others (``SharedExecutions``, consulted by
schema/execution.py). The answer depends on nothing else: resolvers read the viewer and the
database only, and each event is read with emptied loaders. An answer with errors is never
shared: each operation then runs its own.
"""

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Live messages are a few a second at most: the last few hundred cover every listener's turn.
_KEEP = 256


class _Recent(OrderedDict[Any, Any]):
    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _KEEP:
            self.popitem(last=False)


# id(message) -> (message, payload): the message is kept so its id is not reused meanwhile.
_payloads = _Recent()
# id(payload) of the payloads made here: only their executions are worth remembering.
_shareable: set[int] = set()


def shared_payload(message: bytes, decode: Callable[[bytes], T]) -> T:
    """The object ``decode`` makes of ``message``, the same one for every listener of it."""
    found = _payloads.get(id(message))
    if found is not None and found[0] is message:
        return found[1]  # type: ignore[no-any-return]
    payload = decode(message)
    if len(_payloads) >= _KEEP:
        _, (_, oldest) = next(iter(_payloads.items()))
        _shareable.discard(id(oldest))
    _payloads.remember(id(message), (message, payload))
    _shareable.add(id(payload))
    return payload


def is_shareable(payload: object) -> bool:
    return id(payload) in _shareable


class SharedExecutions:
    """Results of event executions by (operation, variables, viewer, payload); the objects
    the key names by id are held with the result, so no id is reused while it is kept."""

    def __init__(self) -> None:
        self._results = _Recent()

    def get(self, key: tuple[Any, ...]) -> Any:
        found = self._results.get(key)
        return None if found is None else found[0]

    def remember(self, key: tuple[Any, ...], result: Any, *held: object) -> None:
        self._results.remember(key, (result, held))

    def forget(self, key: tuple[Any, ...]) -> None:
        self._results.pop(key, None)


executions = SharedExecutions()
