"""The stage sequence of a run (build, reference, export, check, publish), the child processes it
uses, its progress lines and its typed results."""
