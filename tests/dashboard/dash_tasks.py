"""Task functions the dashboard tests and the screenshot script enqueue
(``"tests.dashboard.dash_tasks:<name>"``); they run in the test's own process."""

from __future__ import annotations

import trio

#: Opened by a test to let every :func:`gated` task finish.
gate = trio.Event()


def reset_gate() -> None:
    """A closed gate for the next test (trio events cannot be cleared)."""
    global gate
    gate = trio.Event()


async def gated(n: int) -> int:
    """Wait until the test opens :data:`gate`, then return ``n``."""
    await gate.wait()
    return n


async def send_email(to: str, subject: str, *, template: str = "plain") -> dict[str, str]:
    await trio.sleep(0.01)
    return {"to": to, "message_id": f"<{abs(hash((to, subject))) % 10**10}@mail.example.com>"}


async def resize_image(path: str, width: int) -> dict[str, object]:
    await trio.sleep(0.02)
    return {"path": path.replace(".jpg", f"-{width}w.jpg"), "width": width}


async def charge_card(order_id: int, amount_cents: int, currency: str = "EUR") -> None:
    await trio.sleep(0.01)
    raise ValueError(f"card declined for order {order_id}: insufficient funds")


async def sync_inventory(warehouse: str) -> int:
    await gate.wait()
    return 0
