"""Risk guards, one code for backtest and live: position limits, equity guards, cooldowns,
daily counters, kill switch. Pure; state as a JSON-able dict."""
from strategies.runtime.risk.config import Action, EquityGuard, GuardWindow, RiskConfig, Until
from strategies.runtime.risk.events import EventKind, GuardEvent, Refusal, RefusalCode
from strategies.runtime.risk.guards import KILL_SWITCH, RiskGuards

__all__ = ["KILL_SWITCH", "Action", "EquityGuard", "EventKind", "GuardEvent", "GuardWindow", "Refusal",
           "RefusalCode", "RiskConfig", "RiskGuards", "Until"]
