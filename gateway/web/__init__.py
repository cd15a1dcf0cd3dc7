"""The HTTP edge: parse, call one protocol or store function, render."""
