"""The rules operators edit: expressions, checks, costs, actions and the files they come in."""
