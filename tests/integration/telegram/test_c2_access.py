"""The roles hold however a control command is written (issue 12 item 1): whitespace of every kind
between the command and its argument, `/cmd@botname`, captions, edited messages and inline buttons,
for a viewer and a stranger; and each control handler refuses on its own when the gate is bypassed."""
from __future__ import annotations

import pytest
from telegram.ext import TypeHandler

from tests.integration.telegram.harness import ADMIN, STRANGER, VIEWER, C2Harness
from tests.support.telegram_api import BOT_USER

pytestmark = pytest.mark.integration
REFUSED = "Not allowed: control commands are for admins only."
# Everything python's str.split() (and so python-telegram-bot's argument split) treats as a separator.
SEPARATORS = {
    "newline": "\n", "tab": "\t", "two spaces": "  ", "carriage return": "\r", "crlf": "\r\n",
    "vertical tab": "\x0b", "form feed": "\x0c", "no-break space": "\u00a0", "line separator": "\u2028",
    "paragraph separator": "\u2029", "ideographic space": "\u3000", "em space": "\u2003",
    "file separator": "\x1c", "next line": "\x85", "newline then space": "\n ",
}
BOTNAME = BOT_USER["username"]


def statuses(c2: C2Harness) -> set[str]:
    return {r[0] for r in c2.owner_sql("SELECT status FROM trading.bots")}


async def handled(c2: C2Harness) -> None:
    """Updates are handled in order: once the admin's later /help is answered, all before it were."""
    await c2.ask(ADMIN, "/help")


def control_replies(c2: C2Harness, chat_id: int) -> list[str]:
    return [c.text for c in c2.api.calls_to("sendMessage", chat_id)
            if c.text.startswith(("Paused", "Resumed", "Usage", "Close every position", "Flatten"))
            or "reply_markup" in c.params]


@pytest.mark.parametrize("name", sorted(SEPARATORS))
async def test_a_viewer_cannot_pause_with_any_separator(c2: C2Harness, name: str) -> None:
    sep = SEPARATORS[name]
    for text in (f"/pause{sep}all", f"/flatten{sep}lxalgo_001", f"/pause@{BOTNAME}{sep}all"):
        reply = await c2.ask(VIEWER, text)
        assert reply.text == REFUSED, (name, text, reply.text)
    c2.api.send_command(STRANGER, f"/pause{sep}all")
    c2.api.send_command(STRANGER, f"/flatten{sep}momentum_001")
    await handled(c2)
    assert statuses(c2) == {"active"}
    assert c2.api.calls_to("sendMessage", STRANGER) == []
    assert control_replies(c2, VIEWER) == []
    rows = c2.owner_sql("SELECT user_id, command, result FROM trading.audit_log ORDER BY id")
    assert rows == [(VIEWER, "pause", "denied"), (VIEWER, "flatten", "denied"), (VIEWER, "pause", "denied"),
                    (STRANGER, "pause", "denied"), (STRANGER, "flatten", "denied")]


async def test_a_viewer_cannot_resume_or_reach_a_control_handler_by_punctuation(c2: C2Harness) -> None:
    c2.owner_sql("UPDATE trading.bots SET status = 'paused'")
    for text in ("/resume\nall", "/RESUME all", "/Resume\tall", "/pause,all", "/pause.all", "/flatten-lxalgo_001",
                 f"/resume@{BOTNAME}\u00a0all", f"/RESUME@{BOTNAME.upper()} all"):
        reply = await c2.ask(VIEWER, text)
        assert reply.text == REFUSED, (text, reply.text)
    assert statuses(c2) == {"paused"}
    assert control_replies(c2, VIEWER) == []


async def test_a_command_for_another_bot_is_not_ours(c2: C2Harness) -> None:
    # `/pause@otherbot` is routed to no handler of ours; a viewer still gets no control.
    reply = await c2.ask(VIEWER, "/pause@some_other_bot all")
    assert reply.text in (REFUSED, "Unknown command. Send /help for the list.")
    assert statuses(c2) == {"active"}


async def test_captions_and_edited_messages(c2: C2Harness) -> None:
    for text in ("/pause all", "/pause\nall", "/pause\u00a0all"):
        for kind in ({"caption": True}, {"edited": True}, {"caption": True, "edited": True}):
            mark = len(c2.api.calls)
            c2.api.send_command(VIEWER, text, **kind)
            reply = await c2.api.wait_for("sendMessage", lambda c: int(c.params["chat_id"]) == VIEWER, after=mark)
            assert reply.text == REFUSED, (text, kind, reply.text)
            c2.api.send_command(STRANGER, text, **kind)
    await handled(c2)
    assert statuses(c2) == {"active"}
    assert c2.api.calls_to("sendMessage", STRANGER) == []
    # An admin's edited command is a command like any other.
    mark = len(c2.api.calls)
    c2.api.send_command(ADMIN, "/pause\nmomentum_001", edited=True)
    reply = await c2.api.wait_for("sendMessage", lambda c: int(c.params["chat_id"]) == ADMIN, after=mark)
    assert reply.text == "Paused: momentum_001."


async def test_flatten_buttons_refused_for_viewer_and_stranger(c2: C2Harness) -> None:
    ask = await c2.ask(ADMIN, "/flatten lxalgo_001")
    yes, no = (b["callback_data"] for b in ask.params["reply_markup"]["inline_keyboard"][0])
    for data in (yes, no):
        mark = len(c2.api.calls)
        c2.api.press_button(VIEWER, ask, data)
        refused = await c2.api.wait_for("answerCallbackQuery", after=mark)
        assert refused.params["text"] == "Admins only."
        c2.api.press_button(STRANGER, ask, data)
    await handled(c2)
    assert statuses(c2) == {"active"}
    assert c2.api.calls_to("editMessageText") == []
    assert len(c2.api.calls_to("answerCallbackQuery")) == 2  # the stranger's taps got no answer
    # The admin's confirmation is still there, unspent.
    mark = len(c2.api.calls)
    c2.api.press_button(ADMIN, ask, yes)
    edited = await c2.api.wait_for("editMessageText", after=mark)
    assert edited.text.startswith("Flatten of lxalgo_001: paused")


async def test_control_handlers_refuse_on_their_own_without_the_gate(c2: C2Harness) -> None:
    """Defence in depth: with the gate removed, each control handler and button still checks the role."""
    ask = await c2.ask(ADMIN, "/flatten lxalgo_001")
    yes = ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    app = c2.service.app
    gates = [h for h in app.handlers.get(-1, []) if isinstance(h, TypeHandler)]
    assert len(gates) == 1
    app.remove_handler(gates[0], group=-1)
    for text in ("/pause all", "/resume all", "/flatten momentum_001"):
        reply = await c2.ask(VIEWER, text)
        assert reply.text == REFUSED, (text, reply.text)
    mark = len(c2.api.calls)
    c2.api.press_button(VIEWER, ask, yes)
    refused = await c2.api.wait_for("answerCallbackQuery", after=mark)
    assert refused.params["text"] == "Admins only."
    c2.api.send_command(STRANGER, "/pause all")
    c2.api.press_button(STRANGER, ask, yes)
    await handled(c2)
    assert statuses(c2) == {"active"}
    assert c2.api.calls_to("sendMessage", STRANGER) == []
    assert c2.api.calls_to("editMessageText") == []
