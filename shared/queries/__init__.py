"""The C2 query layer: typed answers for status, positions, balances, fills, analytics and
performance, plus the control commands. It knows nothing of Telegram; transports format results."""
