"""One module per tab: ``build(shared)`` returns a dataclass of components, ``wire(handles, shared)`` connects
module-level handler functions. ``app.TABS`` lists them in display order."""
