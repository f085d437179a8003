"""The graph's own thread pool for its synchronous nodes under asyncio.

The nodes are plain synchronous functions (they wait on chat models, search, Chroma and image
servers). Called with `invoke` they run as they are. Called with `ainvoke`/`astream`, as the
LangGraph server does, LangGraph would run each one in the event loop's default thread pool,
min(32, CPUs + 4) threads shared with everything else in the server, so no more runs than that
progress at once. `both_ways` gives a node an async counterpart that runs it in this module's
pool instead, sized by `CONTEXTGEN_NODE_THREADS`. A run fans out to at most 5 nodes at once
(4 searches beside recall_memory), so 64 threads keep about 12 runs' research moving together
and more runs than that still progress, a step at a time.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, get_type_hints

# LangGraph's own node runnable (also behind langgraph.prebuilt's ToolNode): the one that takes a
# sync and an async function and injects `runtime` as StateGraph does for a plain function.
from langgraph._internal._runnable import RunnableCallable

NODE_THREADS_VARIABLE = "CONTEXTGEN_NODE_THREADS"
DEFAULT_NODE_THREADS = 64


def node_threads(environ: Mapping[str, str] = os.environ) -> int:
    """The pool size from `CONTEXTGEN_NODE_THREADS` (a whole number from 1), else 64."""
    value = environ.get(NODE_THREADS_VARIABLE, "").strip()
    if not value:
        return DEFAULT_NODE_THREADS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"{NODE_THREADS_VARIABLE} must be a whole number from 1 (threads for the graph's "
            f"nodes under asyncio), not {value!r}: set it to e.g. {DEFAULT_NODE_THREADS}"
        )
    return int(value)


# Threads start only when work arrives, so an idle or sync-only process holds none.
NODE_POOL = ThreadPoolExecutor(node_threads(), thread_name_prefix="contextgen-node")


def both_ways(node: Callable[..., Any]) -> RunnableCallable:
    """`node` as a LangGraph runnable: `invoke` calls it directly, exactly as a plain function
    node would be called; `ainvoke` awaits it in `NODE_POOL` with the caller's context variables
    copied, so `get_runtime`, `get_config`, the stream writer and `interrupt` still work.
    `runtime`/`config` are injected from `node`'s own signature."""

    @functools.wraps(node)
    async def in_node_pool(*args: Any, **kwargs: Any) -> Any:
        call = functools.partial(contextvars.copy_context().run, node, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(NODE_POOL, call)

    # trace=False as StateGraph.add_node does for a function: the graph traces the node itself.
    return RunnableCallable(node, in_node_pool, name=node.__name__, trace=False)


def input_schema_of(node: Callable[..., Any]) -> type[Any] | None:
    """The type of `node`'s first parameter, which StateGraph would infer for a plain function
    (a runnable gets the graph's state instead unless it is given)."""
    first = next(iter(inspect.signature(node).parameters))
    hint = get_type_hints(node).get(first)
    return hint if isinstance(hint, type) and get_type_hints(hint) else None
