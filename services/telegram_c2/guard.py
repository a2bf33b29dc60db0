"""The role checked again inside every control handler and button callback (defence in depth: the
gate in auth.py already refused, so this only matters if the gate ever lets one through)."""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import ContextTypes

from services.telegram_c2.deps import deps

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def admin_only(fn: Handler) -> Handler:
    @functools.wraps(fn)
    async def checked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        d = deps(context)
        user = update.effective_user
        role = d.access.role_of(user.id if user else None)
        if role != "admin":
            await d.refuser.refuse(update, role)
            return
        await fn(update, context)

    checked.admin_only = True  # type: ignore[attr-defined]
    return checked
