"""Telegram command and control: read-only reports for viewers, control for admins, alerts."""
