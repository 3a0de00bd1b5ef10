"""The analyst graph: agent ⇄ read-only tools; propose_order → risk_check → approve (interrupt) → execute.

A turn runs agent → tools → agent: the agent node also takes the message in and checks the answer's figures,
so the common turn is three graph steps (one when no tool is needed). The agent node routes itself (it returns a
`Command` naming the next node, or none to end the run): no conditional edge reads the state again after it.
The other routing functions are `async def`: LangGraph runs a plain function in the thread pool (one executor hop, and
its context copy, per routing decision), an async one inline on the event loop.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from agents.approval import make_approve_node, make_execute_node, make_risk_check_node, pending_proposal_call
from agents.deps import AgentDeps
from agents.nodes import make_agent_node, make_tools_node
from agents.state import AgentState, TurnContext


async def _after_tools(state: AgentState) -> str:
    return "risk_check" if pending_proposal_call(state) is not None else "agent"


async def _after_risk_check(state: AgentState) -> str:
    return "approve" if state.get("pending") else "agent"


def build_graph(
    deps: AgentDeps, checkpointer: BaseCheckpointSaver[Any] | None = None, store: BaseStore | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the analyst graph with its checkpointer (conversation memory) and store (preferences)."""
    g = StateGraph(AgentState, context_schema=TurnContext)
    g.add_node("agent", make_agent_node(deps), destinations=("tools", "agent"))  # routes itself (Command)
    g.add_node("tools", make_tools_node(deps))
    g.add_node("risk_check", make_risk_check_node(deps))
    g.add_node("approve", make_approve_node(deps))
    g.add_node("execute", make_execute_node(deps))
    g.add_edge(START, "agent")
    g.add_conditional_edges("tools", _after_tools, ["risk_check", "agent"])
    g.add_conditional_edges("risk_check", _after_risk_check, ["approve", "agent"])
    g.add_edge("approve", "execute")
    g.add_edge("execute", END)
    return g.compile(checkpointer=checkpointer, store=store)
