"""Datasets: SynthFaces (procedural labelled faces, :mod:`core.data.synthfaces`) and image folders."""
