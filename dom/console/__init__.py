"""``dom console``: the operators' web console over the workers' HTTP endpoints and the
contract's topics. Inventory, orders and their explanations, rules (edit, dry-run, publish,
roll back) and health, in a browser; the only thing it ever writes is a rule."""
