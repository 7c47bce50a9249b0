"""mixing tab (being written)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.state import Shared


@dataclass
class Handles:
    note: gr.Markdown


def build(shared: Shared) -> Handles:
    return Handles(gr.Markdown("Coming soon."))


def wire(h: Handles, shared: Shared) -> None:
    pass
