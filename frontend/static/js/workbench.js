// Workbench behaviour: written next.
